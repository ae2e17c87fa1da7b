"""Celery beat tasks for payments (the schedule is in settings: crypto every 15 s, auto top-up every 60 s)."""

from __future__ import annotations

from celery import shared_task

from billing.crypto_scan import crypto_scan_all
from billing.payments import auto_topup_check_all


@shared_task(name="billing.crypto_scan", ignore_result=True, soft_time_limit=120, time_limit=150)
def crypto_scan() -> int:
    """Scan every configured chain; returns how many deposits were credited."""
    return sum(r.credited for r in crypto_scan_all())


@shared_task(name="billing.auto_topup_check", ignore_result=True, soft_time_limit=120, time_limit=150)
def auto_topup_check() -> int:
    return auto_topup_check_all()
