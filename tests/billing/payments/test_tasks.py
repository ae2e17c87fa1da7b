"""Payment tasks run on their own `payments` queue, so a slow chain scan never delays settlement."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from openrouter_site.celery import app

COMPOSE = Path(__file__).resolve().parents[3] / "compose.yaml"


def _queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_it_routes_payment_tasks_to_the_payments_queue_and_settlement_to_billing() -> None:
    assert _queue("payments.crypto_scan") == "payments"
    assert _queue("payments.crypto_scan_chain") == "payments"
    assert _queue("payments.auto_topup_check") == "payments"
    assert _queue("billing.settle_usage") == "billing"
    assert _queue("billing.reservations_expire") == "billing"


def test_the_worker_discovers_the_payment_tasks_the_beat_schedule_names() -> None:
    app.loader.import_default_modules()  # what a worker does at start-up
    assert "billing.payments.tasks" in app.loader.task_modules
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"payments.crypto_scan", "payments.auto_topup_check"} <= scheduled
    assert scheduled <= set(app.tasks), "the beat schedule names a task no worker registers"


def test_compose_runs_a_worker_for_every_queue() -> None:
    consumed = {q for match in re.findall(r"worker .*-Q (\S+)", COMPOSE.read_text()) for q in match.split(",")}
    assert consumed == {q.name for q in app.conf.task_queues}
