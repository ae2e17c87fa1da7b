"""Reads behind the key/credits/generation API and the Credits page, always scoped to one organization.

Live numbers (unsettled usage, open reservations, per-key usage including what is not yet settled)
belong to the credit gate (`billing.gate`), settled ones to the ledger; this module, above both,
only shapes and scopes them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, QuerySet, Sum

from accounts.models import User
from billing import gate
from billing.models import Generation, LedgerAccount, LedgerEntry, Posting
from organizations.models import ApiKey, Organization


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """Nano-dollars a key has spent: OpenRouter credits (`total`...) and BYOK inference (`byok_`...)."""

    total: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    byok_total: int = 0
    byok_daily: int = 0
    byok_weekly: int = 0
    byok_monthly: int = 0

    def for_limit(self, api_key: ApiKey) -> int:
        """What counts against the key's limit in its current reset window."""
        window = api_key.limit_reset or "total"
        used: int = getattr(self, window)
        if api_key.include_byok_in_limit:
            used += getattr(self, f"byok_{window}")
        return used


def key_usage_many(api_keys: list[ApiKey]) -> dict[int, KeyUsage]:
    """Usage for each key (by pk), unsettled usage included: the gate's counters, never recomputed here."""
    return {k.pk: KeyUsage(**gate.key_usage_nanos(k.pk, k.hash, k.organization_id)) for k in api_keys}


def key_usage(api_key: ApiKey) -> KeyUsage:
    return key_usage_many([api_key])[api_key.pk]


def free_model_daily_requests(organization: Organization) -> dict[str, int]:
    return gate.free_model_daily_requests(organization.pk)


@dataclass(frozen=True, slots=True)
class CreditsSummary:
    """What /api/v1/credits and the Credits page show; usage includes unsettled generations."""

    total_credits_nanos: int
    total_usage_nanos: int
    reserved_nanos: int
    unsettled_nanos: int

    @property
    def balance_nanos(self) -> int:
        return self.total_credits_nanos - self.total_usage_nanos

    @property
    def available_nanos(self) -> int:
        return self.balance_nanos - self.reserved_nanos


def credits_summary(*, organization: Organization) -> CreditsSummary:
    view = gate.org_credit_view(organization.pk)
    return CreditsSummary(
        total_credits_nanos=view["credits"],
        total_usage_nanos=view["spent"],
        reserved_nanos=view["reserved"],
        unsettled_nanos=view["unsettled"],
    )


def api_key_page(*, organization: Organization, offset: int, include_disabled: bool, limit: int = 100) -> list[ApiKey]:
    """One page of the organization's inference keys (management keys are not managed through the API)."""
    qs = ApiKey.objects.filter(organization=organization, is_management=False).select_related(
        "created_by", "organization"
    )
    if not include_disabled:
        qs = qs.filter(disabled=False)
    return list(qs.order_by("-created_at", "-pk")[offset : offset + limit])


def api_key_get_managed(*, organization: Organization, key_hash: str) -> ApiKey | None:
    """An inference key of this organization by hash; None for anything else (another org's key too)."""
    return (
        ApiKey.objects.select_related("created_by", "organization")
        .filter(organization=organization, hash=key_hash.lower(), is_management=False)
        .first()
    )


def member_get(*, organization: Organization, public_id: uuid.UUID) -> User | None:
    """A member of this organization by public id; None for anyone else."""
    return User.objects.filter(public_id=public_id, memberships__organization=organization).first()


def organization_is_free_tier(*, organization: Organization) -> bool:
    """OpenRouter's `is_free_tier`: the organization has never bought credits."""
    return not LedgerEntry.objects.filter(organization=organization, kind=LedgerEntry.Kind.TOPUP).exists()


def generation_get(*, organization: Organization, generation_id: str) -> Generation | None:
    """A settled generation of this organization; None while unsettled or for anyone else's."""
    return (
        Generation.objects.select_related("organization")
        .filter(organization=organization, generation_id=generation_id)
        .first()
    )


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One entry as the organization sees it: what happened and how it moved their balance."""

    entry: LedgerEntry
    amount_nanos: int  # signed effect on the organization's credits

    @property
    def is_credit(self) -> bool:
        return self.amount_nanos >= 0

    @property
    def magnitude_nanos(self) -> int:
        return abs(self.amount_nanos)


def ledger_entry_list_recent(*, organization: Organization, limit: int = 25) -> list[LedgerRow]:
    """Recent entries touching the organization's credits, newest first."""
    postings = (
        Posting.objects.filter(account__kind=LedgerAccount.Kind.ORG_CREDITS, account__organization=organization)
        .select_related("entry")
        .order_by("-entry__created_at", "-entry_id")[:limit]
    )
    return [LedgerRow(entry=p.entry, amount_nanos=p.amount_nanos) for p in postings]


def generation_list_recent(*, organization: Organization, limit: int = 20) -> QuerySet[Generation]:
    return (
        Generation.objects.filter(organization=organization).select_related("api_key").order_by("-created_at")[:limit]
    )


@dataclass(frozen=True, slots=True)
class GenerationTotals:
    count: int
    cost_nanos: int
    tokens_prompt: int
    tokens_completion: int


def generation_totals_since(*, organization: Organization, since: datetime) -> GenerationTotals:
    row = Generation.objects.filter(organization=organization, created_at__gte=since).aggregate(
        count=Count("pk"),
        cost=Sum("cost_nanos", default=0),
        prompt=Sum("tokens_prompt", default=0),
        completion=Sum("tokens_completion", default=0),
    )
    return GenerationTotals(
        count=row["count"], cost_nanos=row["cost"], tokens_prompt=row["prompt"], tokens_completion=row["completion"]
    )
