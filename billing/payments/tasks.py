"""Payment beat tasks, on the `payments` queue (routed by the `payments.` name prefix in celery.py).

The schedule is CELERY_BEAT_SCHEDULE in settings: crypto every 15 s, auto top-up every 60 s.
"""

from __future__ import annotations

from celery import shared_task

from billing.payments.auto_topup import auto_topup_check_all
from billing.payments.crypto import crypto_scan_all


@shared_task(name="payments.crypto_scan", ignore_result=True, soft_time_limit=120, time_limit=150)
def crypto_scan() -> int:
    """Scan every configured chain; returns how many deposits were credited."""
    return sum(r.credited for r in crypto_scan_all())


@shared_task(name="payments.auto_topup_check", ignore_result=True, soft_time_limit=120, time_limit=150)
def auto_topup_check() -> int:
    return auto_topup_check_all()
