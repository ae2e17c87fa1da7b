"""Team sign-in: whoever proves an address at a company's domain joins the company's organization.

The proof is a verified email address: the identity provider's `email_verified` claim for single
sign-on (allauth marks the address verified), or the confirmation link for a password account. The
rule is checked at every sign-in, so an organization created after a user signed up still gets them.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from organizations.audit import audit_record
from organizations.models import Membership, Organization

logger = logging.getLogger(__name__)
JOINABLE_ROLES = {Membership.Role.ADMIN.value, Membership.Role.MEMBER.value}


def auto_join_rules() -> dict[str, tuple[str, str]]:
    """SSO_AUTO_JOIN parsed: email domain -> (organization slug, role). Bad entries are logged, skipped."""
    rules: dict[str, tuple[str, str]] = {}
    for entry in settings.SSO_AUTO_JOIN:
        domain, _, target = entry.partition("=")
        slug, _, role = target.partition(":")
        role = role or Membership.Role.MEMBER.value
        if not domain or not slug or role not in JOINABLE_ROLES:
            logger.warning("SSO_AUTO_JOIN entry %r ignored: expected domain=organization-slug:admin|member", entry)
            continue
        rules[domain.strip().lower()] = (slug.strip(), role)
    return rules


def _verified_domains(user: User) -> set[str]:
    from allauth.account.models import EmailAddress

    addresses = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    return {address.rsplit("@", 1)[-1].lower() for address in addresses}


@transaction.atomic
def membership_auto_join(*, user: User) -> list[Membership]:
    """Memberships created for `user` by the domain rules (existing memberships are never changed)."""
    rules = auto_join_rules()
    if not rules:
        return []
    joined = []
    for domain in sorted(_verified_domains(user) & rules.keys()):
        slug, role = rules[domain]
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            logger.warning("SSO_AUTO_JOIN names organization %r, which does not exist", slug)
            continue
        membership, created = Membership.objects.get_or_create(
            organization=organization, user=user, defaults={"role": role}
        )
        if created:
            audit_record(
                organization=organization,
                action="member.auto_joined",
                target=user.email,
                after={"role": role, "domain": domain},
                actor=user,
            )
            joined.append(membership)
    return joined


def _on_login(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    membership_auto_join(user=user)


def connect() -> None:
    user_logged_in.connect(_on_login, dispatch_uid="organizations.sso.auto_join")
