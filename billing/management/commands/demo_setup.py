"""demo_setup: one demo user, one organization "Demo" with demo credits, one demo API key; prints them.

Idempotent: every run prints the same credentials. A key's plaintext cannot be recovered from the
hash the database keeps, so the first run writes the demo key and password to a local file
(settings.DEMO_CREDENTIALS_FILE, var/demo-credentials.json, mode 0600, never in the database) and later
runs print them from there. `--rotate` replaces the key and the password; if the file is gone (or its
key was deleted or disabled in the dashboard) the next run rotates by itself, so there is still
exactly one demo key. A billing command because it grants credits; organizations, below billing, could not.
"""

from __future__ import annotations

import json
import os
import secrets
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from billing.services import credits_grant
from common.money import usd_to_nanos
from organizations.keys import key_hash
from organizations.models import ApiKey, Membership, Organization
from organizations.services import api_key_create, api_key_delete, organization_create

DEMO_EMAIL = "demo@example.com"
DEMO_ORG_NAME = "Demo"
DEMO_KEY_NAME = "demo key"


class Command(BaseCommand):
    # Scriptable and fast: no URL/system checks (migrate runs those); they would also make the
    # CLI depend on every view module importing cleanly.
    requires_system_checks: list[str] = []
    help = "Create (once) a demo user, a 'Demo' organization with demo credits and a demo API key, and print them."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--rotate", action="store_true", help="Replace the demo key and password with new ones.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(settings.DEMO_CREDENTIALS_FILE)
        saved = {} if options["rotate"] else _read(path)
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(DEMO_EMAIL, None)
                _mark_email_verified(user)
            password = saved.get("password")
            if not password or not user.check_password(password):
                # First run, --rotate, or a lost file: a demo account's password may simply be reset.
                password = secrets.token_urlsafe(9)
                user.set_password(password)
                user.save(update_fields=["password"])
            org = self._org(user)
            credits_grant(
                organization=org,
                amount_nanos=usd_to_nanos(settings.DEMO_CREDITS_USD),
                reason="Demo credits",
                idempotency_key=f"demo-setup:grant:{org.public_id}",
            )
            key = _demo_key(org, user, saved.get("key", ""))
        _write(path, {"email": DEMO_EMAIL, "password": password, "key": key})
        self.stdout.write(_banner(org, password, key, path))

    def _org(self, user: User) -> Organization:
        membership = (
            Membership.objects.select_related("organization")
            .filter(user=user, organization__name=DEMO_ORG_NAME, organization__is_personal=False)
            .first()
        )
        if membership is not None:
            return membership.organization
        return organization_create(name=DEMO_ORG_NAME, owner=user)


def _demo_key(org: Organization, user: User, saved_key: str) -> str:
    """The saved key while it is still the org's live demo key; otherwise exactly one new one."""
    demo_keys = list(ApiKey.objects.filter(organization=org, name=DEMO_KEY_NAME))
    if saved_key and any(k.hash == key_hash(saved_key) and not k.disabled for k in demo_keys):
        return saved_key
    for old in demo_keys:
        api_key_delete(api_key=old)  # its usage history stays (generations keep the org, lose the key link)
    return api_key_create(organization=org, name=DEMO_KEY_NAME, created_by=user).key


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, str]) -> None:
    """Owner-only from the first byte (created 0600, then renamed over the old file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)  # an older tmp file keeps its mode through O_CREAT
    os.replace(tmp, path)


def _banner(org: Organization, password: str, key: str, path: Path) -> str:
    site = settings.SITE_URL.rstrip("/")
    bar = "=" * 72
    return "\n".join(
        [
            bar,
            f"Demo organization '{org.name}' ({org.slug}) has ${settings.DEMO_CREDITS_USD} of demo credits.",
            f"Sign in at {site}/accounts/login/ as {DEMO_EMAIL} with password {password}",
            "Demo API key (the same on every run; `manage.py demo_setup --rotate` replaces it):",
            "",
            f"    {key}",
            "",
            f"Saved in {path} (readable by you only). Try it:",
            f"  curl {site}/api/v1/chat/completions -H 'Authorization: Bearer {key}' \\",
            "    -H 'Content-Type: application/json' \\",
            '    -d \'{"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}\'',
            "(needs OPENAI_API_KEY in .env; or add your own model server: manage.py provider_add --help)",
            bar,
        ]
    )


def _mark_email_verified(user: User) -> None:
    """Sign-up requires a verified address; the demo address cannot receive mail."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.update_or_create(user=user, email=user.email, defaults={"verified": True, "primary": True})
