"""apikey_create ORG --name NAME [--limit USD] [--management]: prints only the new key on stdout."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.cli import EXIT_USAGE, positive_usd_nanos
from organizations.audit import audited_command
from organizations.management.commands._cli import org_from_ref
from organizations.services import OrganizationError, api_key_create


class Command(BaseCommand):
    # Scriptable and fast: no URL/system checks (migrate runs those); they would also make the
    # CLI depend on every view module importing cleanly.
    requires_system_checks: list[str] = []
    help = "Create an API key for an organization (slug, id or UUID) and print only the key, for scripts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", metavar="ORG")
        parser.add_argument("--name", required=True)
        parser.add_argument("--limit", metavar="USD", help="credit limit for this key, in US dollars")
        parser.add_argument("--management", action="store_true", help="a management key (admin API only)")

    @audited_command
    def handle(self, *args: Any, **options: Any) -> None:
        org = org_from_ref(options["org"])
        limit = positive_usd_nanos(options["limit"], "--limit") if options["limit"] is not None else None
        try:
            issued = api_key_create(
                organization=org, name=options["name"], limit_nanos=limit, is_management=options["management"]
            )
        except OrganizationError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from exc
        self.stdout.write(issued.key)
