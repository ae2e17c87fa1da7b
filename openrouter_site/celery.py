"""The Celery app: named queues so settlement never waits behind analytics work."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

app = Celery("openrouter_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("billing"), Queue("analytics"))
app.conf.task_default_queue = "default"
app.conf.task_routes = {
    "billing.*": {"queue": "billing"},
    "analytics.*": {"queue": "analytics"},
}
app.autodiscover_tasks()
app.autodiscover_tasks(related_name="payment_tasks")
