"""Billing's periodic work (the beat schedule in settings runs these). Thin: each calls one service."""

from __future__ import annotations

import logging

from celery import shared_task

from billing.gate import gate_housekeeping
from billing.prompt_log import prompt_logs_purge
from billing.settlement import reconciliation_run_record, settle_pending

log = logging.getLogger("billing.reconcile")


@shared_task(name="billing.settle_usage", acks_late=True, ignore_result=True)
def settle_usage() -> int:
    """Post queued usage events to the ledger; the queue itself is the durable record, not this message."""
    return settle_pending()


@shared_task(name="billing.reservations_expire", ignore_result=True)
def reservations_expire() -> dict[str, int]:
    """Release holds of requests that never reported back (a crashed gateway); re-sync recent credit changes."""
    return gate_housekeeping()


@shared_task(name="billing.usage_reconcile", ignore_result=True)
def usage_reconcile_task() -> dict[str, int]:
    """Every 5 minutes: alarm (an ERROR log) on any charge the ledger never received or received twice,
    and keep the run for the admin (Billing > Reconciliation runs)."""
    run = reconciliation_run_record()
    for gap in run.gaps:
        log.error("usage reconciliation: %s", gap["detail"])
    if run.dead_lettered:
        log.error("usage reconciliation: %d usage event(s) dead-lettered, not posted", run.dead_lettered)
    return {"gaps": len(run.gaps), "dead_lettered": run.dead_lettered}


@shared_task(name="billing.prompt_log_purge", ignore_result=True)
def prompt_log_purge() -> int:
    """Hourly: delete prompt logs older than their organization's retention."""
    return prompt_logs_purge()
