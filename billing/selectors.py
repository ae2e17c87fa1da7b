"""Reads of balances and usage: the settled truth from the ledger, and views that add unsettled usage.

The gate (billing.gate) mirrors these snapshots in Redis; views read through the helpers below so
the numbers they show include usage the settlement worker has not posted yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Aggregate, Count, OuterRef, Q, QuerySet, Subquery, Sum

from billing.models import Generation, LedgerAccount, LedgerEntry, Posting
from organizations.models import ApiKey, Organization

USAGE = LedgerEntry.Kind.USAGE
NON_USAGE_KINDS = [kind for kind in LedgerEntry.Kind.values if kind != USAGE]


@dataclass(frozen=True, slots=True)
class OrgLedgerSnapshot:
    """One consistent read of an organization's credit account (a single SQL statement)."""

    credits_in_nanos: int  # every non-usage posting: grants, top-ups, refunds, revocations
    version: int  # how many such postings; the ledger is append-only, so this only grows
    purchased_nanos: int  # top-ups ever bought (for the free-model daily tier)
    settled_usage_nanos: int  # usage posted so far (positive)


def org_ledger_snapshot(org_id: int) -> OrgLedgerSnapshot:
    """Credits in from the few non-usage postings, settled usage from the cached balance.

    Selecting non-usage entries by an IN list of kinds (not a negation) lets an index on
    LedgerEntry(organization, kind) skip the organization's usage rows entirely; the balance and
    the sums come from one statement, so they are one consistent snapshot.
    """
    postings = Posting.objects.filter(account=OuterRef("pk"), entry__kind__in=NON_USAGE_KINDS)
    topups = postings.filter(entry__kind=LedgerEntry.Kind.TOPUP, amount_nanos__gt=0)
    row = (
        LedgerAccount.objects.filter(kind=LedgerAccount.Kind.ORG_CREDITS, organization_id=org_id)
        .annotate(
            cin=_per_account(postings, Sum("amount_nanos")),
            ver=_per_account(postings, Count("id")),
            bought=_per_account(topups, Sum("amount_nanos")),
        )
        .values_list("balance_nanos", "cin", "ver", "bought")
        .first()
    )
    if row is None:
        return OrgLedgerSnapshot(credits_in_nanos=0, version=0, purchased_nanos=0, settled_usage_nanos=0)
    balance, cin, ver, bought = row
    return OrgLedgerSnapshot(
        credits_in_nanos=cin or 0,
        version=ver or 0,
        purchased_nanos=bought or 0,
        settled_usage_nanos=(cin or 0) - balance,
    )


def _per_account(postings: QuerySet[Posting], aggregate: Aggregate) -> Subquery:
    return Subquery(postings.values("account").annotate(value=aggregate).values("value")[:1])


@dataclass(frozen=True, slots=True)
class UsageWindows:
    """Where each key-limit window starts (UTC): midnight, Monday midnight, the 1st of the month."""

    day: datetime
    week: datetime
    month: datetime

    @classmethod
    def at(cls, now: datetime) -> UsageWindows:
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(day=day, week=day - timedelta(days=day.weekday()), month=day.replace(day=1))


def key_settled_usage(key_id: int, windows: UsageWindows) -> dict[str, int]:
    """Settled usage of one key per window: `u_*` charged nanos, `b_*` BYOK list cost."""
    byok = Q(is_byok=True)
    parts: dict[str, Q] = {
        "all": Q(),
        "d": Q(created_at__gte=windows.day),
        "w": Q(created_at__gte=windows.week),
        "m": Q(created_at__gte=windows.month),
    }
    aggregates = {}
    for name, window in parts.items():
        aggregates[f"u_{name}"] = Sum("cost_nanos", filter=window) if name != "all" else Sum("cost_nanos")
        aggregates[f"b_{name}"] = Sum("list_cost_nanos", filter=window & byok)
    row = Generation.objects.filter(api_key_id=key_id).aggregate(**aggregates)
    return {name: value or 0 for name, value in row.items()}


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
    from billing import gate  # the gate imports this module; import late to keep the cycle out

    view = gate.org_credit_view(organization.pk)
    return CreditsSummary(
        total_credits_nanos=view["credits"],
        total_usage_nanos=view["spent"],
        reserved_nanos=view["reserved"],
        unsettled_nanos=view["unsettled"],
    )


def key_usage(*, organization: Organization, key_hash: str) -> dict[str, int]:
    """A key's usage counters (see billing.gate.key_usage_nanos); an outsider's key reads as missing."""
    from billing import gate

    if not ApiKey.objects.filter(organization=organization, hash=key_hash).exists():
        raise ApiKey.DoesNotExist(key_hash)
    return gate.key_usage_nanos(key_hash)


def orgs_with_credit_changes_since(since: datetime) -> list[int]:
    """Organizations with a non-usage ledger entry (grant, top-up, refund...) since then."""
    entries = LedgerEntry.objects.filter(created_at__gte=since, organization__isnull=False).exclude(kind=USAGE)
    return sorted(set(entries.values_list("organization_id", flat=True)))
