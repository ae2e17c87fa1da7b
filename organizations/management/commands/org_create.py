"""org_create NAME --owner EMAIL [--create-owner]: create an organization; prints its slug."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from common.cli import EXIT_NOT_FOUND, EXIT_USAGE
from organizations.audit import audited_command
from organizations.services import OrganizationError, organization_create


class Command(BaseCommand):
    # Scriptable and fast: no URL/system checks (migrate runs those); they would also make the
    # CLI depend on every view module importing cleanly.
    requires_system_checks: list[str] = []
    help = (
        "Create an organization owned by an existing user and print its slug. The owner must exist "
        "(a typo should not silently create an account) unless --create-owner is given, which creates "
        "the user with no usable password (they set one through password reset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, metavar="EMAIL")
        parser.add_argument("--create-owner", action="store_true", help="create the owner if there is no such user")

    @audited_command
    def handle(self, *args: Any, **options: Any) -> None:
        email = options["owner"].strip().lower()
        if "@" not in email:
            raise CommandError(f"--owner must be an email address, got {options['owner']!r}", returncode=EXIT_USAGE)
        with transaction.atomic():
            owner = User.objects.filter(email__iexact=email).first()
            if owner is None:
                if not options["create_owner"]:
                    raise CommandError(f"no user with email {email} (use --create-owner)", returncode=EXIT_NOT_FOUND)
                owner = User.objects.create_user(email)  # no password: unusable until reset
            try:
                org = organization_create(name=options["name"], owner=owner)
            except OrganizationError as exc:
                raise CommandError(str(exc), returncode=EXIT_USAGE) from exc
        self.stdout.write(org.slug)
