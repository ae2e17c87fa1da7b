"""Recompute every balance from its postings and report any difference; exit 1 on one."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.ledger import ledger_discrepancies
from billing.models import LedgerAccount
from billing.selectors import usage_mismatches
from billing.settlement import usage_deadletters_open, usage_reconcile


class Command(BaseCommand):
    # An audit must run even when unrelated web configuration is broken, so it skips system checks.
    requires_system_checks: list[str] = []
    help = "Verify the ledger: cached balances equal their postings, entries sum to zero, usage matches generations."

    def handle(self, *args: Any, **options: Any) -> None:
        accounts, entries = ledger_discrepancies()
        usage = usage_mismatches()
        for d in accounts:
            self.stderr.write(f"account {d.account}: cached {d.cached_nanos} != postings {d.computed_nanos}")
        for entry in entries:
            self.stderr.write(f"entry {entry.pk} ({entry.idempotency_key}) does not sum to zero")
        for org, gens, ledger in usage:
            self.stderr.write(f"org {org}: generations charged {gens} != usage postings {ledger}")
        # A dead-lettered event was charged by the gate but never reached the ledger: revenue owed.
        dead = usage_deadletters_open()
        if dead:
            self.stderr.write(f"{dead} usage event(s) dead-lettered, not posted (manage.py usage_deadletter_retry)")
        # Reconciliation: what the credit gate charged against what the ledger received.
        gaps = usage_reconcile()
        for gap in gaps:
            self.stderr.write(gap.describe())
        problems = len(accounts) + len(entries) + len(usage) + dead + len(gaps)
        if problems:
            raise CommandError(f"ledger_verify: {problems} problem(s)")
        self.stdout.write(f"ledger_verify: {LedgerAccount.objects.count()} accounts balanced, no differences")
