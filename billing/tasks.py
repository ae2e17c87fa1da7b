"""Billing's periodic work (the beat schedule in settings runs these). Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from billing.gate import gate_housekeeping
from billing.settlement import settle_pending


@shared_task(name="billing.settle_usage", acks_late=True, ignore_result=True)
def settle_usage() -> int:
    """Post queued usage events to the ledger; the queue itself is the durable record, not this message."""
    return settle_pending()


@shared_task(name="billing.reservations_expire", ignore_result=True)
def reservations_expire() -> dict[str, int]:
    """Release holds of requests that never reported back (a crashed gateway); re-sync recent credit changes."""
    return gate_housekeeping()
