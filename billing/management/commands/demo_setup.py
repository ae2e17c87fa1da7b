"""demo_setup: a demo user, organization "Demo" with demo credits, and a fresh API key (printed).

Idempotent: the user, the organization and the grant (fixed idempotency key) are created once;
each run issues a new key because a key's plaintext can only be shown when it is created.
A billing command because it grants credits; organizations, below billing, could not.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from billing.services import credits_grant
from common.money import usd_to_nanos
from organizations.models import Membership, Organization
from organizations.services import api_key_create, organization_create

DEMO_EMAIL = "demo@example.com"
DEMO_ORG_NAME = "Demo"


class Command(BaseCommand):
    # Scriptable and fast: no URL/system checks (migrate runs those); they would also make the
    # CLI depend on every view module importing cleanly.
    requires_system_checks: list[str] = []
    help = "Create (once) a demo user, a 'Demo' organization with demo credits, and print a fresh API key."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            user, password = self._user()
            org = self._org(user)
            credits_grant(
                organization=org,
                amount_nanos=usd_to_nanos(settings.DEMO_CREDITS_USD),
                reason="Demo credits",
                idempotency_key=f"demo-setup:grant:{org.public_id}",
            )
            issued = api_key_create(organization=org, name="demo key", created_by=user)
        site = settings.SITE_URL.rstrip("/")
        bar = "=" * 72
        lines = [
            bar,
            f"Demo organization '{org.name}' ({org.slug}) has ${settings.DEMO_CREDITS_USD} of demo credits.",
            f"Sign in at {site}/accounts/login/ as {DEMO_EMAIL}"
            + (f" with password {password}" if password else " (password unchanged since it was created)"),
            "Your API key (shown once):",
            "",
            f"    {issued.key}",
            "",
            "Try it:",
            f"  curl {site}/api/v1/chat/completions -H 'Authorization: Bearer {issued.key}' \\",
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}\'',
            bar,
        ]
        self.stdout.write("\n".join(lines))

    def _user(self) -> tuple[User, str | None]:
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is not None:
            return user, None
        password = secrets.token_urlsafe(9)
        user = User.objects.create_user(DEMO_EMAIL, password)
        _mark_email_verified(user)
        return user, password

    def _org(self, user: User) -> Organization:
        membership = (
            Membership.objects.select_related("organization")
            .filter(user=user, organization__name=DEMO_ORG_NAME, organization__is_personal=False)
            .first()
        )
        if membership is not None:
            return membership.organization
        return organization_create(name=DEMO_ORG_NAME, owner=user)


def _mark_email_verified(user: User) -> None:
    """Sign-up requires a verified address; the demo address cannot receive mail."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
