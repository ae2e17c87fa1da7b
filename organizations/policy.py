"""Writes of an organization's data policy and of a key's model restriction (the gateway enforces them).

What is stored is validated and normalised here (lowercased, de-duplicated, in the given order), so
the gateway's per-process copy (proxy/gateway/policy.py) never has to guess. Every change publishes
an invalidation on commit, so every gateway process drops its cached copy at once, and is audited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from organizations.audit import audit_record
from organizations.models import ApiKey, Membership, Organization
from organizations.services import OrganizationError, api_key_changed, organization_changed

PROVIDER_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,59}$")
# `author/model`, `author/model:variant`, `author/*`, or `*` for "any" (the same as leaving it empty).
MODEL_PATTERN = re.compile(r"^(\*|[a-z0-9][a-z0-9._-]*/(\*|[a-z0-9][a-z0-9._:*-]*))$")
MAX_ENTRIES = 200

POLICY_FIELDS = (
    "policy_deny_data_collection",
    "policy_zdr_only",
    "policy_allowed_providers",
    "policy_blocked_providers",
    "policy_allowed_models",
)


def _normalised(values: Iterable[str], pattern: re.Pattern[str], what: str) -> list[str]:
    out: list[str] = []
    for raw in values:
        value = raw.strip().lower()
        if not value:
            continue
        if not pattern.match(value):
            raise OrganizationError(f"“{raw.strip()}” is not a valid {what}.")
        if value not in out:
            out.append(value)
    if len(out) > MAX_ENTRIES:
        raise OrganizationError(f"At most {MAX_ENTRIES} {what}s.")
    return out


def provider_slugs_clean(values: Iterable[str]) -> list[str]:
    return _normalised(values, PROVIDER_SLUG, "provider slug")


def model_patterns_clean(values: Iterable[str]) -> list[str]:
    return _normalised(values, MODEL_PATTERN, "model id or author/* pattern")


def data_policy_snapshot(organization: Organization) -> dict[str, Any]:
    return {name.removeprefix("policy_"): getattr(organization, name) for name in POLICY_FIELDS}


@transaction.atomic
def organization_set_data_policy(
    *,
    actor: Membership,
    deny_data_collection: bool,
    zdr_only: bool,
    allowed_providers: Iterable[str],
    blocked_providers: Iterable[str],
    allowed_models: Iterable[str],
) -> Organization:
    """Replace the organization's data policy. Owners and admins only; the change is audited."""
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can change the data policy.")
    allowed = provider_slugs_clean(allowed_providers)
    blocked = provider_slugs_clean(blocked_providers)
    both = [slug for slug in allowed if slug in blocked]
    if both:
        raise OrganizationError(f"{', '.join(both)} cannot be both allowed and blocked.")
    models = model_patterns_clean(allowed_models)
    # Locked so two admins saving at once produce two audit records that chain, not a lost update.
    organization = Organization.objects.select_for_update().get(pk=actor.organization_id)
    before = data_policy_snapshot(organization)
    organization.policy_deny_data_collection = deny_data_collection
    organization.policy_zdr_only = zdr_only
    organization.policy_allowed_providers = allowed
    organization.policy_blocked_providers = blocked
    organization.policy_allowed_models = [] if models == ["*"] else models
    after = data_policy_snapshot(organization)
    if after == before:
        return organization
    organization.save(update_fields=list(POLICY_FIELDS))
    organization_changed(organization.pk)
    audit_record(
        organization=organization,
        action="settings.data_policy_changed",
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
        actor=actor.user,
    )
    return organization


@transaction.atomic
def api_key_set_allowed_models(*, actor: Membership, api_key: ApiKey, allowed_models: Iterable[str]) -> ApiKey:
    """The key-level model restriction (like OpenRouter's): empty allows whatever the organization allows."""
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can restrict a key's models.")
    if api_key.organization_id != actor.organization_id:
        raise OrganizationError("No such key.")
    models = model_patterns_clean(allowed_models)
    models = [] if models == ["*"] else models
    before = list(api_key.allowed_models or [])
    if models == before:
        return api_key
    api_key.allowed_models = models
    api_key.save(update_fields=["allowed_models", "updated_at"])
    api_key_changed(api_key)
    audit_record(
        organization=api_key.organization,
        action="key.allowed_models_changed",
        target=api_key,
        before={"allowed_models": before},
        after={"allowed_models": models},
        actor=actor.user,
    )
    return api_key
