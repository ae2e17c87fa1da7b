"""Reads behind the key/credits/generation API and the Credits page, always scoped to one organization.

Live numbers (unsettled usage, open reservations, per-key usage including what is not yet settled)
belong to `billing.gate`, which keeps them in Redis. It is imported lazily: when it is not installed
we report the settled figures from the ledger and `billing.Generation` alone, never a second copy of
the gate's bookkeeping.
"""

from __future__ import annotations

import importlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount, LedgerEntry, Posting
from organizations.models import ApiKey, Organization


def _gate() -> ModuleType | None:
    try:
        return importlib.import_module("billing.gate")
    except ImportError:
        return None


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


def period_starts(now: datetime) -> tuple[datetime, datetime, datetime]:
    """Start of the current UTC day, week (Monday) and month: where limit windows reset."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day - timedelta(days=day.weekday()), day.replace(day=1)


def _settled_key_usage(api_keys: list[ApiKey]) -> dict[int, KeyUsage]:
    """Per-key usage from settled generations: one grouped query for a whole page of keys."""
    day, week, month = period_starts(timezone.now())
    byok = Q(is_byok=True)
    aggregates: dict[str, Any] = {}
    for name, since in (("total", None), ("daily", day), ("weekly", week), ("monthly", month)):
        window = Q(created_at__gte=since) if since else None
        # A BYOK generation charges its fee to credits (cost) and its inference to BYOK (list cost).
        aggregates[name] = Sum("cost_nanos", filter=window, default=0)
        aggregates[f"byok_{name}"] = Sum("list_cost_nanos", filter=(window & byok) if window else byok, default=0)
    rows = (
        Generation.objects.filter(api_key_id__in=[k.pk for k in api_keys])
        .values("api_key_id")
        .annotate(**aggregates)
        .order_by()
    )
    result: dict[int, KeyUsage] = {}
    for row in rows:
        values: dict[str, Any] = dict(row)
        key_id = int(values.pop("api_key_id"))
        result[key_id] = KeyUsage(**values)
    return result


def key_usage_many(api_keys: list[ApiKey]) -> dict[int, KeyUsage]:
    """Usage for each key (by pk), including unsettled usage when the gate is installed."""
    gate = _gate()
    if gate is not None and hasattr(gate, "key_usage_nanos"):
        return {k.pk: KeyUsage(**gate.key_usage_nanos(k.hash)) for k in api_keys}
    settled = _settled_key_usage(api_keys)
    return {k.pk: settled.get(k.pk, KeyUsage()) for k in api_keys}


def key_usage(api_key: ApiKey) -> KeyUsage:
    return key_usage_many([api_key])[api_key.pk]


def api_key_page(*, organization: Organization, offset: int, include_disabled: bool, limit: int = 100) -> list[ApiKey]:
    """One page of the organization's inference keys (management keys are not managed through the API)."""
    qs = ApiKey.objects.filter(organization=organization, is_management=False).select_related("created_by")
    if not include_disabled:
        qs = qs.filter(disabled=False)
    return list(qs.order_by("-created_at", "-pk")[offset : offset + limit])


def api_key_get_managed(*, organization: Organization, key_hash: str) -> ApiKey | None:
    """An inference key of this organization by hash; None for anything else (another org's key too)."""
    return (
        ApiKey.objects.select_related("created_by")
        .filter(organization=organization, hash=key_hash.lower(), is_management=False)
        .first()
    )


def member_get(*, organization: Organization, public_id: uuid.UUID) -> User | None:
    """A member of this organization by public id; None for anyone else."""
    return User.objects.filter(public_id=public_id, memberships__organization=organization).first()


@dataclass(frozen=True, slots=True)
class CreditsSummary:
    total_credits_nanos: int  # every credit ever added, net of refunds, revocations and disputes
    settled_usage_nanos: int
    unsettled_usage_nanos: int  # finished requests the settlement worker has not posted yet
    reserved_nanos: int  # worst-case holds of requests still running
    settled_balance_nanos: int

    @property
    def total_usage_nanos(self) -> int:
        return self.settled_usage_nanos + self.unsettled_usage_nanos

    @property
    def balance_nanos(self) -> int:
        """Settled balance minus unsettled usage: equals total_credits - total_usage."""
        return self.settled_balance_nanos - self.unsettled_usage_nanos


def credits_summary(*, organization: Organization) -> CreditsSummary:
    by_kind = dict(
        Posting.objects.filter(account__kind=LedgerAccount.Kind.ORG_CREDITS, account__organization=organization)
        .values_list("entry__kind")
        .annotate(total=Sum("amount_nanos"))
        .order_by()
    )
    settled_usage = -(by_kind.pop(LedgerEntry.Kind.USAGE, 0) or 0)
    credits = sum(v or 0 for v in by_kind.values())
    gate = _gate()
    unsettled = int(gate.org_unsettled_nanos(organization.pk)) if gate is not None else 0
    reserved = int(gate.org_reserved_nanos(organization.pk)) if gate is not None else 0
    return CreditsSummary(
        total_credits_nanos=credits,
        settled_usage_nanos=settled_usage,
        unsettled_usage_nanos=unsettled,
        reserved_nanos=reserved,
        settled_balance_nanos=org_balance_nanos(organization),
    )


def organization_is_free_tier(*, organization: Organization) -> bool:
    """OpenRouter's `is_free_tier`: the organization has never bought credits."""
    return not LedgerEntry.objects.filter(organization=organization, kind=LedgerEntry.Kind.TOPUP).exists()


def generation_get(*, organization: Organization, generation_id: str) -> Generation | None:
    """A settled generation of this organization; None while unsettled or for anyone else's."""
    return Generation.objects.filter(organization=organization, generation_id=generation_id).first()


def ledger_entry_list_recent(*, organization: Organization, limit: int = 25) -> list[tuple[LedgerEntry, int]]:
    """Recent entries touching the organization's credits, each with its signed effect on the balance."""
    postings = (
        Posting.objects.filter(account__kind=LedgerAccount.Kind.ORG_CREDITS, account__organization=organization)
        .select_related("entry")
        .order_by("-entry__created_at", "-entry_id")[:limit]
    )
    return [(p.entry, p.amount_nanos) for p in postings]


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
