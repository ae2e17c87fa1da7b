"""credits_grant ORG USD --reason TEXT: give an organization credit from the platform's grants account."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.services import CreditsError, credits_grant
from common.cli import EXIT_USAGE, positive_usd_nanos
from common.money import nanos_to_usd
from organizations.audit import audited_command
from organizations.management.commands._cli import org_from_ref


class Command(BaseCommand):
    # Scriptable and fast: no URL/system checks (migrate runs those); they would also make the
    # CLI depend on every view module importing cleanly.
    requires_system_checks: list[str] = []
    help = "Grant credits. USD is a positive decimal (e.g. 5 or 0.25). ORG is a slug, id or UUID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", metavar="ORG")
        parser.add_argument("usd", metavar="USD")
        parser.add_argument("--reason", required=True, help="shown in the ledger and to the organization")
        parser.add_argument("--idempotency-key", help="repeat-safe: a second run with the same key grants nothing")

    @audited_command
    def handle(self, *args: Any, **options: Any) -> None:
        amount = positive_usd_nanos(options["usd"], "USD")
        if not options["reason"].strip():
            raise CommandError("--reason must not be empty", returncode=EXIT_USAGE)
        org = org_from_ref(options["org"])
        try:
            entry = credits_grant(
                organization=org,
                amount_nanos=amount,
                reason=options["reason"],
                idempotency_key=options["idempotency_key"],
            )
        except CreditsError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from exc
        self.stdout.write(f"granted ${nanos_to_usd(amount):f} to {org.slug} (ledger entry {entry.pk})")
