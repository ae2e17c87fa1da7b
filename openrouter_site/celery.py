"""The Celery app: named queues so settlement never waits behind payment work."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

from common import metrics

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

app = Celery("openrouter_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("billing"), Queue("payments"))
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "billing.*": {"queue": "billing"},
    # Crypto scans may run for minutes (chain RPCs): their own queue keeps them away from settlement.
    "payments.*": {"queue": "payments"},
}
app.autodiscover_tasks()
# billing.payments is a package inside the billing app, which the app scan above does not reach.
app.autodiscover_tasks(["billing.payments"])
# Finished tasks counted for /metrics (several workers: PROMETHEUS_MULTIPROC_DIR, see common.metrics).
metrics.connect_celery()
