"""Settled reads: what the ledger and the Generation rows say, nothing the gate has not posted yet.

The credit gate (billing.gate) sits above this module and mirrors these snapshots; reads that add
unsettled usage go through the gate (billing.api.selectors for the API and the Credits page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Aggregate, Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDay

from billing.models import Generation, LedgerAccount, LedgerEntry, Posting
from organizations.models import Organization

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


def orgs_with_credit_changes_since(since: datetime) -> list[int]:
    """Organizations with a non-usage ledger entry (grant, top-up, refund...) since then."""
    entries = LedgerEntry.objects.filter(created_at__gte=since, organization__isnull=False).exclude(kind=USAGE)
    return sorted(set(entries.values_list("organization_id", flat=True)))


def usage_posted_by_org() -> dict[int, int]:
    """{org id: usage charged to its credits on the ledger} (positive nanos), for reconciliation."""
    posted = (
        Posting.objects.filter(entry__kind=USAGE, account__kind=LedgerAccount.Kind.ORG_CREDITS)
        .values_list("account__organization_id")
        .annotate(total=Sum("amount_nanos"))
        .order_by()
    )
    return {org: -(total or 0) for org, total in posted}


def usage_mismatches() -> list[tuple[int, int, int]]:
    """Organizations whose generations' charges differ from their usage postings: (org, generations, ledger)."""
    charged = dict(Generation.objects.values_list("organization_id").annotate(total=Sum("cost_nanos")).order_by())
    posted = dict(
        Posting.objects.filter(entry__kind=USAGE, account__kind=LedgerAccount.Kind.ORG_CREDITS)
        .values_list("account__organization_id")
        .annotate(total=Sum("amount_nanos"))
        .order_by()
    )
    orgs = sorted(set(charged) | set(posted))
    return [
        (org, charged.get(org) or 0, -(posted.get(org) or 0))
        for org in orgs
        if (charged.get(org) or 0) != -(posted.get(org) or 0)
    ]


HISTORY_DAYS_PER_PAGE = 14


@dataclass(frozen=True, slots=True)
class CreditLine:
    label: str  # the entry kind
    memo: str
    entries: int
    net_nanos: int  # negative is a debit


@dataclass(frozen=True, slots=True)
class CreditDay:
    """One UTC day of an organization's credit history: each grant, top-up or refund on its own line,
    and the day's usage as one line (a busy day has thousands of usage entries)."""

    day: datetime
    lines: list[CreditLine]


def credit_history_days(*, organization: Organization, page: int, now: datetime) -> tuple[list[CreditDay], bool]:
    """Page `page` (1 = the latest `HISTORY_DAYS_PER_PAGE` UTC days) of the credit history, newest day
    first, and whether older entries exist. Pages are fixed spans of days, so a page costs two range
    queries however long the history is (days without entries are left out)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    until = today + timedelta(days=1) - timedelta(days=HISTORY_DAYS_PER_PAGE * (page - 1))
    since = until - timedelta(days=HISTORY_DAYS_PER_PAGE)
    postings = Posting.objects.filter(account__kind=LedgerAccount.Kind.ORG_CREDITS, account__organization=organization)
    in_range = postings.filter(entry__created_at__gte=since, entry__created_at__lt=until)
    labels = dict(LedgerEntry.Kind.choices)
    lines: list[tuple[datetime, CreditLine]] = []
    usage = (
        in_range.filter(entry__kind=USAGE)
        .annotate(day=TruncDay("entry__created_at", tzinfo=UTC))
        .values("day")
        .annotate(n=Count("id"), net=Sum("amount_nanos"))
        .order_by()
    )
    lines += [(row["day"], CreditLine(str(labels[USAGE]), "", row["n"], row["net"])) for row in usage]
    others = in_range.exclude(entry__kind=USAGE).select_related("entry").order_by("-entry__created_at", "-entry_id")
    for posting in others:
        entry = posting.entry
        day = entry.created_at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        lines.append((day, CreditLine(str(labels.get(entry.kind, entry.kind)), entry.memo, 1, posting.amount_nanos)))
    days: dict[datetime, list[CreditLine]] = {}
    # Newest day first; within a day usage sorts last, the other lines are the ones a reader looks for.
    for day, line in sorted(lines, key=lambda item: (-item[0].timestamp(), item[1].label == labels[USAGE])):
        days.setdefault(day, []).append(line)
    older = postings.filter(entry__created_at__lt=since).exists()
    return [CreditDay(day, day_lines) for day, day_lines in days.items()], older
