"""Payment beat tasks, on the `payments` queue (routed by the `payments.` name prefix in celery.py).

The schedule is CELERY_BEAT_SCHEDULE in settings: crypto every 15 s, auto top-up every 60 s.
"""

from __future__ import annotations

from celery import shared_task

from billing.payments.auto_topup import auto_topup_check_all
from billing.payments.crypto import crypto_chains, crypto_scan_chain
from billing.payments.webhooks import payment_events_expire_deferred


@shared_task(name="payments.crypto_scan", ignore_result=True, soft_time_limit=30, time_limit=60)
def crypto_scan() -> int:
    """Start one scan task per configured chain, so a slow or failing node never delays another chain."""
    chain_ids = list(crypto_chains())
    for chain_id in chain_ids:
        crypto_scan_chain_task.delay(chain_id)
    return len(chain_ids)


@shared_task(name="payments.crypto_scan_chain", ignore_result=True, soft_time_limit=120, time_limit=150)
def crypto_scan_chain_task(chain_id: int) -> int:
    """Scan one chain; returns how many deposits were credited."""
    return crypto_scan_chain(chain_id=chain_id).credited


@shared_task(name="payments.auto_topup_check", ignore_result=True, soft_time_limit=120, time_limit=150)
def auto_topup_check() -> int:
    payment_events_expire_deferred()
    return auto_topup_check_all()
