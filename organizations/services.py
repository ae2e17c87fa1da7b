"""Writes for organizations, memberships, invitations and API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from common.invalidation import publish_on_commit
from organizations.audit import audit_record, audit_snapshot
from organizations.keys import key_generate, key_hash, key_label
from organizations.models import ApiKey, Invitation, Membership, Organization


class OrganizationError(Exception):
    """A request the organization rules refuse (shown to the user as is)."""


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def organization_create(*, name: str, owner: User, is_personal: bool = False) -> Organization:
    name = name.strip()
    if not name:
        raise OrganizationError("An organization needs a name.")
    org = Organization.objects.create(name=name, slug=_unique_slug(name), is_personal=is_personal)
    Membership.objects.create(organization=org, user=owner, role=Membership.Role.OWNER)
    audit_record(
        organization=org, action="organization.created", target=org.name, after={"name": org.name}, actor=owner
    )
    return org


def organization_create_personal(*, user: User) -> Organization:
    """Every new user gets a personal organization so they can create a key straight away."""
    local = user.email.split("@", 1)[0]
    return organization_create(name=f"{local}'s workspace", owner=user, is_personal=True)


@transaction.atomic
def membership_set_role(*, actor: Membership, membership: Membership, role: str) -> Membership:
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can change roles.")
    if membership.organization_id != actor.organization_id:
        raise OrganizationError("No such member.")
    _ensure_may_act_on(actor, membership)
    if membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        _ensure_another_owner(membership)
    if role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER:
        raise OrganizationError("Only an owner can make someone an owner.")
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        organization=membership.organization,
        action="member.role_changed",
        target=membership.user.email,
        before=before,
        after={"role": role},
        actor=actor.user,
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Membership, membership: Membership) -> None:
    if not actor.can_manage and actor.pk != membership.pk:
        raise OrganizationError("Only owners and admins can remove members.")
    _ensure_may_act_on(actor, membership)
    if membership.role == Membership.Role.OWNER:
        _ensure_another_owner(membership)
    membership.delete()
    audit_record(
        organization=membership.organization,
        action="member.removed",
        target=membership.user.email,
        before={"role": membership.role},
        actor=actor.user,
    )


def _ensure_may_act_on(actor: Membership, membership: Membership) -> None:
    """Only owners change or remove owners: an admin could otherwise demote or remove every owner
    but one and take the organization (issue 11, case 10). Acting on oneself is always allowed."""
    if membership.role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER and actor.pk != membership.pk:
        raise OrganizationError("Only an owner can change or remove an owner.")


def _ensure_another_owner(membership: Membership) -> None:
    owners = Membership.objects.select_for_update().filter(
        organization_id=membership.organization_id, role=Membership.Role.OWNER
    )
    if owners.exclude(pk=membership.pk).count() == 0:
        raise OrganizationError("An organization must keep at least one owner.")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # goes into the emailed link only; never stored


@transaction.atomic
def invitation_create(*, actor: Membership, email: str, role: str) -> IssuedInvitation:
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can invite.")
    if role == Membership.Role.OWNER and actor.role != Membership.Role.OWNER:
        raise OrganizationError("Only an owner can invite an owner.")
    email = email.strip().lower()
    if Membership.objects.filter(organization=actor.organization, user__email__iexact=email).exists():
        raise OrganizationError(f"{email} is already a member.")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=actor.organization,
        email=email,
        role=role,
        token_hash=_token_hash(token),
        invited_by=actor.user,
    )
    audit_record(
        organization=actor.organization,
        action="invitation.created",
        target=email,
        after={"role": role},
        actor=actor.user,
    )
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("organization")
        .filter(token_hash=_token_hash(token))
        .first()
    )
    if invitation is None or not invitation.is_open:
        raise OrganizationError("This invitation is no longer valid.")
    if invitation.email.lower() != user.email.lower():
        raise OrganizationError("This invitation was sent to a different email address.")
    membership, _ = Membership.objects.get_or_create(
        organization=invitation.organization, user=user, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        organization=invitation.organization,
        action="member.joined",
        target=user.email,
        after={"role": membership.role, "invitation": str(invitation.public_id)},
        actor=user,
    )
    return membership


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # the plaintext, shown exactly once


def api_key_create(
    *,
    organization: Organization,
    name: str,
    created_by: User | None = None,
    limit_nanos: int | None = None,
    limit_reset: str | None = None,
    include_byok_in_limit: bool = False,
    is_management: bool = False,
    expires_at: datetime | None = None,
) -> IssuedKey:
    name = name.strip()
    if not name:
        raise OrganizationError("A key needs a name.")
    if limit_nanos is not None and limit_nanos < 0:
        raise OrganizationError("A credit limit cannot be negative.")
    if limit_reset not in (None, *ApiKey.LimitReset.values):
        raise OrganizationError("limit_reset must be daily, weekly, monthly or null.")
    key = key_generate()
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        label=key_label(key),
        hash=key_hash(key),
        is_management=is_management,
        limit_nanos=limit_nanos,
        limit_reset=limit_reset,
        include_byok_in_limit=include_byok_in_limit,
        expires_at=expires_at,
        created_by=created_by,
    )
    audit_record(
        organization=organization, action="key.created", target=api_key, after=audit_snapshot(api_key, KEY_AUDIT_FIELDS)
    )
    return IssuedKey(api_key=api_key, key=key)


_UNSET = object()
# What the audit log shows of a key: never its hash.
KEY_AUDIT_FIELDS = ("name", "label", "disabled", "is_management", "limit_nanos", "limit_reset", "include_byok_in_limit")


def api_key_update(
    *,
    api_key: ApiKey,
    name: str | None = None,
    disabled: bool | None = None,
    limit_nanos: int | object | None = _UNSET,
    limit_reset: str | object | None = _UNSET,
    include_byok_in_limit: bool | None = None,
) -> ApiKey:
    """Change what was given; `limit_nanos=None` removes the limit.

    Gateways hold key records in a per-process cache for `proxy.gateway.auth.KEY_CACHE_SECONDS` (3 s),
    so a disable or a new limit reaches every process within that time, with no round trip per request.
    """
    fields: list[str] = []
    before = audit_snapshot(api_key, KEY_AUDIT_FIELDS)
    if name is not None:
        if not name.strip():
            raise OrganizationError("A key needs a name.")
        api_key.name = name.strip()
        fields.append("name")
    if disabled is not None:
        api_key.disabled = disabled
        fields.append("disabled")
    if limit_nanos is not _UNSET:
        if limit_nanos is not None and (not isinstance(limit_nanos, int) or limit_nanos < 0):
            raise OrganizationError("A credit limit cannot be negative.")
        api_key.limit_nanos = limit_nanos
        fields.append("limit_nanos")
    if limit_reset is not _UNSET:
        if limit_reset not in (None, *ApiKey.LimitReset.values):
            raise OrganizationError("limit_reset must be daily, weekly, monthly or null.")
        api_key.limit_reset = limit_reset
        fields.append("limit_reset")
    if include_byok_in_limit is not None:
        api_key.include_byok_in_limit = include_byok_in_limit
        fields.append("include_byok_in_limit")
    if fields:
        api_key.save(update_fields=[*fields, "updated_at"])
        api_key_changed(api_key)
        audit_record(
            organization=api_key.organization,
            action="key.updated",
            target=api_key,
            before={f: before[f] for f in fields},
            after=audit_snapshot(api_key, fields),
        )
    return api_key


def api_key_delete(*, api_key: ApiKey) -> None:
    api_key_changed(api_key)
    audit_record(
        organization=api_key.organization,
        action="key.deleted",
        target=api_key,
        before=audit_snapshot(api_key, KEY_AUDIT_FIELDS),
    )
    api_key.delete()


def api_key_changed(api_key: ApiKey) -> None:
    """Every process drops its cached copy of the key once the change commits (common/invalidation)."""
    from django.core.cache import cache

    cache.delete(f"apikey:{api_key.hash}")
    publish_on_commit("key", api_key.hash)


def organization_changed(organization_id: int) -> None:
    """Gateways reload the organization's settings (BYOK keys, logging) on their next request."""
    publish_on_commit("org", str(organization_id))


@transaction.atomic
def invitation_create_and_send(
    *, actor: Membership, email: str, role: str, accept_url_for: Callable[[str], str]
) -> IssuedInvitation:
    """Invite and email the accept link. A failed send rolls the invitation back: nothing half-created."""
    issued = invitation_create(actor=actor, email=email, role=role)
    context = {
        "organization": actor.organization,
        "invited_by": actor.user,
        "role": issued.invitation.get_role_display(),
        "accept_url": accept_url_for(issued.token),
        "expires_at": issued.invitation.expires_at,
    }
    subject = render_to_string("organizations/email/invitation_subject.txt", context).strip()
    body = render_to_string("organizations/email/invitation_message.txt", context)
    send_mail(subject, body, None, [issued.invitation.email])
    return issued


def invitation_revoke(*, actor: Membership, invitation: Invitation) -> None:
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can revoke invitations.")
    if invitation.organization_id != actor.organization_id:
        raise OrganizationError("No such invitation.")
    invitation.delete()
    audit_record(
        organization=actor.organization, action="invitation.revoked", target=invitation.email, actor=actor.user
    )


PROMPT_LOG_RETENTION_DAYS = (1, 365)  # the range an organization may keep its prompt logs for


def prompt_log_key_configured() -> bool:
    """Prompt logs are only ever stored encrypted: without PROMPT_LOG_ENCRYPTION_KEYS logging stays off."""
    return any(k.strip() for k in settings.PROMPT_LOG_ENCRYPTION_KEYS)


def organization_set_log_prompts(
    *, actor: Membership, enabled: bool, retention_days: int | None = None
) -> Organization:
    """The privacy switch: prompts and completions are stored (encrypted, by settlement: billing/prompt_log.py)
    only when an owner or admin opts in, and kept `retention_days` (unchanged when None)."""
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can change privacy settings.")
    if enabled and not prompt_log_key_configured():
        raise OrganizationError(
            "Prompt logging cannot be switched on: the operator has not configured PROMPT_LOG_ENCRYPTION_KEYS."
        )
    low, high = PROMPT_LOG_RETENTION_DAYS
    if retention_days is not None and not low <= retention_days <= high:
        raise OrganizationError(f"Keep prompt logs between {low} and {high} days.")
    organization = actor.organization
    before: dict[str, object] = {"log_prompts": organization.log_prompts}
    after: dict[str, object] = {"log_prompts": enabled}
    fields = ["log_prompts"]
    if retention_days is not None and retention_days != organization.log_prompts_retention_days:
        before["log_prompts_retention_days"] = organization.log_prompts_retention_days
        after["log_prompts_retention_days"] = retention_days
        organization.log_prompts_retention_days = retention_days
        fields.append("log_prompts_retention_days")
    organization.log_prompts = enabled
    organization.save(update_fields=fields)
    organization_changed(organization.pk)
    audit_record(
        organization=organization,
        action="settings.logging_changed",
        before=before,
        after=after,
        actor=actor.user,
    )
    return organization
