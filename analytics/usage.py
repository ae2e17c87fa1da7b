"""One reader for usage sums over a window, from the cheapest source that is exact.

A window [since, until) is split at the rollup watermark: whole UTC days behind it come from the day
rollups, the remaining whole hours behind it from the hour rollups, and the edges (a partial first hour,
everything from the watermark on) from the raw generations. The pieces never overlap, so summing them
gives exactly what a scan of the raw rows would (tests/analytics/test_rollups.py checks that).
Callers merge rows by their own labels, so each source simply contributes rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, DateTimeField, Func, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDay, TruncHour

from analytics.models import RollupWatermark, UsageRollup
from analytics.rollup import WATERMARK, floor_day, floor_hour
from billing.models import Generation
from organizations.models import Organization

_RAW_SUMS: dict[str, Any] = {
    "requests": Count("id"),
    "spend_nanos": Coalesce(Sum("cost_nanos"), 0),
    "byok_nanos": Coalesce(Sum("list_cost_nanos", filter=Q(is_byok=True)), 0),
    "prompt": Coalesce(Sum("tokens_prompt"), 0),
    "completion": Coalesce(Sum("tokens_completion"), 0),
    "reasoning": Coalesce(Sum("tokens_reasoning"), 0),
    "latency_sum": Coalesce(Sum("latency_ms"), 0),
    "latency_n": Count("latency_ms"),
}
_ROLLUP_SUMS: dict[str, Any] = {
    "requests": Coalesce(Sum("requests"), 0),
    "spend_nanos": Coalesce(Sum("cost_nanos"), 0),
    "byok_nanos": Coalesce(Sum("byok_list_cost_nanos"), 0),
    "prompt": Coalesce(Sum("tokens_prompt"), 0),
    "completion": Coalesce(Sum("tokens_completion"), 0),
    "reasoning": Coalesce(Sum("tokens_reasoning"), 0),
    "latency_sum": Coalesce(Sum("latency_sum_ms"), 0),
    "latency_n": Coalesce(Sum("latency_n"), 0),
}
SUM_NAMES = tuple(_RAW_SUMS)


def rolled_through() -> datetime | None:
    return RollupWatermark.objects.filter(name=WATERMARK).values_list("through", flat=True).first()


def _ceil(moment: datetime, floor: Any, step: timedelta) -> datetime:
    start: datetime = floor(moment)
    return start if start == moment.astimezone(UTC) else start + step


class FiveMinutes(Func):
    """The 5-minute bucket a timestamp falls in (PostgreSQL's date_bin, aligned to UTC midnight)."""

    template = "date_bin('5 minutes', %(expressions)s, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    output_field = DateTimeField()


MINUTES5 = "5min"


def _grouped(
    qs: QuerySet[Any], *, time_field: str, dims: tuple[str, ...], unit: str | None, sums: dict[str, Any]
) -> list[dict[str, Any]]:
    if unit == MINUTES5:
        qs = qs.annotate(period=FiveMinutes(time_field))
        dims = ("period", *dims)
    elif unit is not None:
        trunc = TruncHour if unit == "hour" else TruncDay
        # "period", not "bucket": the rollups have a field of that name.
        qs = qs.annotate(period=trunc(time_field, tzinfo=UTC))
        dims = ("period", *dims)
    rows = list(qs.order_by().values(*dims).annotate(**sums)) if dims else [qs.aggregate(**sums)]
    for row in rows:
        row["tokens"] = row["prompt"] + row["completion"]
        if unit is not None:
            row["bucket"] = row.pop("period")
    return rows


def usage_rows(
    *,
    organization: Organization,
    since: datetime,
    until: datetime | None = None,
    where: Q | None = None,
    dims: tuple[str, ...] = (),
    unit: str | None = None,
) -> list[dict[str, Any]]:
    """Sums (see SUM_NAMES, plus "tokens") per `dims` (and per `unit` bucket if given) over [since, until).

    Several rows may share the same dims (one per source); callers add them up. `where` is a filter
    on fields that raw rows and rollups share (model, provider_*, api_key__*, app_title, http_referer...).
    """
    where = where or Q()
    through = rolled_through()
    first_hour = _ceil(since, floor_hour, timedelta(hours=1))
    rolled_end = min(through, floor_hour(until)) if through and until else through
    raw = Generation.objects.filter(where, organization=organization, created_at__gte=since)
    if until is not None:
        raw = raw.filter(created_at__lt=until)
    # 5-minute buckets exist only in the raw rows; the short windows that use them (1 h) are read
    # through the (organization, -created_at) index.
    if unit == MINUTES5 or rolled_end is None or rolled_end <= first_hour:
        return _grouped(raw, time_field="created_at", dims=dims, unit=unit, sums=_RAW_SUMS)

    rows = _grouped(
        raw.exclude(created_at__gte=first_hour, created_at__lt=rolled_end),
        time_field="created_at",
        dims=dims,
        unit=unit,
        sums=_RAW_SUMS,
    )
    rollups = UsageRollup.objects.filter(where, organization=organization)
    first_day, last_day = _ceil(first_hour, floor_day, timedelta(days=1)), floor_day(rolled_end)
    spans = [(first_hour, rolled_end)]
    if unit != "hour" and first_day < last_day:
        days = rollups.filter(granularity=UsageRollup.DAY, bucket__gte=first_day, bucket__lt=last_day)
        rows += _grouped(days, time_field="bucket", dims=dims, unit=unit, sums=_ROLLUP_SUMS)
        spans = [(first_hour, first_day), (last_day, rolled_end)]
    # Each non-empty span is its own query: an OR of ranges keeps PostgreSQL off the bucket index.
    for start, end in spans:
        if start < end:
            hours = rollups.filter(granularity=UsageRollup.HOUR, bucket__gte=start, bucket__lt=end)
            rows += _grouped(hours, time_field="bucket", dims=dims, unit=unit, sums=_ROLLUP_SUMS)
    return rows


def usage_totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {name: sum(int(row[name] or 0) for row in rows) for name in (*SUM_NAMES, "tokens")}


def rollup_rows_all(
    *, since: datetime, until: datetime | None = None, dims: tuple[str, ...] = (), unit: str | None = None
) -> list[dict[str, Any]]:
    """Sums per `dims` (and `unit`) over [since, until) from the rollups alone, every organization together.

    For public aggregates (rankings, catalog popularity): never the raw rows, so it stays cheap at any
    traffic, and it reaches only as far as the watermark (up to an hour and the rollup lag behind).
    Whole UTC days come from the day rows, the hours at either edge from the hour rows. Callers must not
    select organization, key or user dimensions for a public page.
    """
    through = rolled_through()
    end = min(through, floor_hour(until)) if through and until else through
    start = _ceil(since, floor_hour, timedelta(hours=1))
    if end is None or end <= start:
        return []
    first_day, last_day = _ceil(start, floor_day, timedelta(days=1)), floor_day(end)
    rows: list[dict[str, Any]] = []
    spans = [(start, end)]
    if unit != "hour" and first_day < last_day:
        days = UsageRollup.objects.filter(granularity=UsageRollup.DAY, bucket__gte=first_day, bucket__lt=last_day)
        rows += _grouped(days, time_field="bucket", dims=dims, unit=unit, sums=_ROLLUP_SUMS)
        spans = [(start, first_day), (last_day, end)]
    for lo, hi in spans:
        if lo < hi:
            hours = UsageRollup.objects.filter(granularity=UsageRollup.HOUR, bucket__gte=lo, bucket__lt=hi)
            rows += _grouped(hours, time_field="bucket", dims=dims, unit=unit, sums=_ROLLUP_SUMS)
    return rows
