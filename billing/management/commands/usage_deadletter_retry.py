"""Post the usage events settlement dead-lettered, after whatever refused them was fixed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.settlement import usage_deadletters_retry


class Command(BaseCommand):
    # Like ledger_verify, an operator's repair tool must run even when web configuration is broken.
    requires_system_checks: list[str] = []
    help = "Retry the dead-lettered usage events; exit 1 if any still fails."

    def handle(self, *args: Any, **options: Any) -> None:
        posted, failed = usage_deadletters_retry()
        self.stdout.write(f"usage_deadletter_retry: {posted} posted, {failed} still failing")
        if failed:
            raise CommandError(f"usage_deadletter_retry: {failed} event(s) still fail (see the admin)")
