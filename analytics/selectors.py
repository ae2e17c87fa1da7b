"""Activity reads over the settled generation records. Read-only; always scoped to one organization.

Every query starts from `_scoped` (organization + window + filters), so no read here can see another
organization's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Q, QuerySet
from django.utils import timezone

from analytics.usage import MINUTES5, usage_rows, usage_totals
from billing.models import Generation
from common.money import nanos_to_usd_number
from organizations.models import Organization

# range key -> (bucket unit, bucket count). Windows are whole buckets ending with the current one, so
# the chart, the totals and the tables all count the same rows. "custom" is whole UTC days from/to.
RANGES: dict[str, tuple[str, int]] = {
    "1h": (MINUTES5, 12),
    "1d": ("hour", 24),
    "7d": ("day", 7),
    "30d": ("day", 30),
}
CUSTOM = "custom"
RANGE_LABELS = {"1h": "1 h", "1d": "24 h", "7d": "7 d", "30d": "30 d", CUSTOM: "Custom"}
CUSTOM_MAX_DAYS = 366
_STEPS = {MINUTES5: timedelta(minutes=5), "hour": timedelta(hours=1), "day": timedelta(days=1)}
GROUPS = {"model": "model", "key": "api_key__name", "provider": "provider_name", "app": "app"}
METRICS = ("requests", "tokens", "cost")
TOP_SERIES = 8  # more stacked colours than this are unreadable; the rest become "Other"
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    """Narrowing a member asked for; empty strings mean "any"."""

    model: str = ""
    provider: str = ""
    key: str = ""  # an ApiKey public_id
    app: str = ""

    def query(self) -> Q:
        q = Q()
        if self.model:
            q &= Q(model=self.model)
        if self.provider:
            q &= Q(provider_slug=self.provider) | Q(provider_name=self.provider)
        if self.key:
            q &= Q(api_key__public_id=self.key)
        if self.app:
            # An app is its X-Title, or for untitled traffic the referer's host (matched loosely).
            q &= Q(app_title=self.app) | (Q(app_title="") & Q(http_referer__icontains=self.app))
        return q

    def matches(self, row: dict[str, Any]) -> bool:
        """`query()` applied to a usage row that carries model, provider_slug, provider_name,
        api_key__public_id, app_title and http_referer (the activity page filters its one read in Python)."""
        if self.model and row["model"] != self.model:
            return False
        if self.provider and self.provider not in (row["provider_slug"], row["provider_name"]):
            return False
        if self.key and str(row["api_key__public_id"] or "") != self.key:
            return False
        if self.app:
            title, referer = row["app_title"] or "", row["http_referer"] or ""
            return title == self.app or (title == "" and self.app.lower() in referer.lower())
        return True


@dataclass(frozen=True)
class Window:
    range_key: str
    unit: str  # "5min", "hour" or "day"
    starts: list[datetime] = field(default_factory=list)
    until: datetime | None = None  # end (exclusive) of a custom range; None: up to now

    @property
    def since(self) -> datetime:
        return self.starts[0]


@dataclass(frozen=True)
class Totals:
    requests: int
    spend_nanos: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int


def activity_window(range_key: str, *, now: datetime | None = None) -> Window:
    """The buckets of a range, oldest first, in UTC (unknown range keys fall back to 7 days)."""
    range_key = range_key if range_key in RANGES else "7d"
    unit, count = RANGES[range_key]
    now = (now or timezone.now()).astimezone(UTC)
    step = _STEPS[unit]
    if unit == MINUTES5:
        last = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    elif unit == "hour":
        last = now.replace(minute=0, second=0, microsecond=0)
    else:
        last = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Window(range_key, unit, [last - step * i for i in range(count - 1, -1, -1)])


class RangeError(ValueError):
    """A custom range a member typed that cannot be served; the message is shown to them."""


def custom_window(date_from: str, date_to: str, *, now: datetime | None = None) -> Window:
    """Whole UTC days `date_from`..`date_to` (inclusive, YYYY-MM-DD). One day is charted per hour, longer
    ranges per day. Raises RangeError with a message for the member on bad input."""
    try:
        first, last = date.fromisoformat(date_from.strip()), date.fromisoformat(date_to.strip())
    except ValueError:
        raise RangeError("Enter both dates as YYYY-MM-DD.") from None
    today = (now or timezone.now()).astimezone(UTC).date()
    if first > last:
        raise RangeError("The start date must be on or before the end date.")
    if last > today:
        raise RangeError("The end date cannot be in the future.")
    if (last - first).days + 1 > CUSTOM_MAX_DAYS:
        raise RangeError(f"A custom range can cover at most {CUSTOM_MAX_DAYS} days.")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    unit = "hour" if first == last else "day"
    count = int((until - start) / _STEPS[unit])
    return Window(CUSTOM, unit, [start + _STEPS[unit] * i for i in range(count)], until=until)


def activity_since(range_key: str) -> datetime:
    return activity_window(range_key).since


def app_label(app_title: str, http_referer: str) -> str:
    """What "By app" shows: the X-Title the client sent, else the referer's host."""
    if app_title:
        return app_title
    if http_referer:
        host = urlsplit(http_referer if "//" in http_referer else f"//{http_referer}").hostname
        return host or http_referer
    return ""


def _scoped(
    *, organization: Organization, since: datetime, filters: Filters | None = None, until: datetime | None = None
) -> QuerySet[Generation]:
    qs = Generation.objects.filter(organization=organization, created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return qs.filter(filters.query()) if filters else qs


def activity_totals(
    *, organization: Organization, since: datetime, filters: Filters | None = None, until: datetime | None = None
) -> Totals:
    rows = usage_rows(organization=organization, since=since, until=until, where=filters.query() if filters else None)
    sums = usage_totals(rows)
    return Totals(sums["requests"], sums["spend_nanos"], sums["prompt"], sums["completion"], sums["reasoning"])


def _group_fields(group: str) -> tuple[str, ...]:
    return ("app_title", "http_referer") if group == "app" else (GROUPS.get(group, "model"),)


def _label(group: str, row: dict[str, Any]) -> str:
    if group == "app":
        return app_label(row["app_title"] or "", row["http_referer"] or "")
    return str(row[_group_fields(group)[0]] or "")


def activity_grouped(
    *,
    organization: Organization,
    since: datetime,
    group: str,
    filters: Filters | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Requests, tokens, spend and mean latency per model, key, provider or app, biggest spend first."""
    group = group if group in GROUPS else "model"
    rows = usage_rows(
        organization=organization,
        since=since,
        until=until,
        where=filters.query() if filters else None,
        dims=_group_fields(group),
    )
    return grouped_from(rows, group)


def grouped_from(rows: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    """`activity_grouped`'s table from usage rows that carry (at least) the group's fields."""
    # Several referers can share a host (different paths): merge them under the one label.
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        label = _label(group, row)
        into = merged.setdefault(
            label, {"label": label, "requests": 0, "spend_nanos": 0, "tokens": 0, "latency_sum": 0, "latency_n": 0}
        )
        for name in ("requests", "spend_nanos", "tokens", "latency_sum", "latency_n"):
            into[name] += row[name]
    out = sorted(merged.values(), key=lambda r: (-r["spend_nanos"], -r["requests"], r["label"]))[:50]
    for r in out:
        r["latency_ms"] = r["latency_sum"] / r["latency_n"] if r["latency_n"] else None
    return out


def _metric_value(metric: str, row: dict[str, Any]) -> int:
    return int(row["tokens"] if metric == "tokens" else row["spend_nanos"] if metric == "cost" else row["requests"])


def activity_series(
    *, organization: Organization, window: Window, metric: str, group: str, filters: Filters | None = None
) -> dict[str, Any]:
    """The chart's data: one value per bucket (empty buckets are zeros) per group, stacked.

    The biggest `TOP_SERIES` groups get a series each and the rest are summed into "Other", so a long
    tail of models cannot make the chart unreadable. Cost is sent as USD numbers (display only).
    """
    metric = metric if metric in METRICS else "requests"
    group = group if group in GROUPS else "model"
    rows = usage_rows(
        organization=organization,
        since=window.since,
        until=window.until,
        where=filters.query() if filters else None,
        dims=_group_fields(group),
        unit=window.unit,
    )
    index = {start: i for i, start in enumerate(window.starts)}
    by_label: dict[str, list[int]] = {}
    for row in rows:
        slot = index.get(row["bucket"])
        if slot is None:
            continue  # a row from a clock a little ahead of ours
        values = by_label.setdefault(_label(group, row) or "(none)", [0] * len(window.starts))
        values[slot] += _metric_value(metric, row)
    ranked = sorted(by_label.items(), key=lambda item: (-sum(item[1]), item[0]))
    top, rest = ranked[:TOP_SERIES], ranked[TOP_SERIES:]
    if rest:
        top.append(("Other", [sum(col) for col in zip(*(values for _, values in rest), strict=True)]))

    def shown(value: int) -> float | int:
        return nanos_to_usd_number(value) if metric == "cost" else value

    label_format = {MINUTES5: "%H:%M", "hour": "%b %-d %H:00"}.get(window.unit, "%b %-d")
    return {
        "range": window.range_key,
        "metric": metric,
        "group": group,
        "unit": "USD" if metric == "cost" else metric,
        "buckets": [start.isoformat() for start in window.starts],
        "labels": [start.strftime(label_format) for start in window.starts],
        "series": [{"label": label, "data": [shown(v) for v in values]} for label, values in top],
        "total": shown(sum(sum(values) for _, values in ranked)),
    }


def activity_aggregates(
    *, organization: Organization, window: Window, group: str, filters: Filters | None = None
) -> list[dict[str, Any]]:
    """The chart's numbers as rows, for the aggregate export: per bucket x group (every group, not only the
    charted top ones), oldest bucket first, biggest spend first within a bucket. Buckets without traffic
    have no row. Bounded by buckets x groups, never by the number of generations."""
    group = group if group in GROUPS else "model"
    rows = usage_rows(
        organization=organization,
        since=window.since,
        until=window.until,
        where=filters.query() if filters else None,
        dims=_group_fields(group),
        unit=window.unit,
    )
    valid = set(window.starts)
    merged: dict[tuple[datetime, str], dict[str, Any]] = {}
    for row in rows:
        if row["bucket"] not in valid:
            continue
        label = _label(group, row) or "(none)"
        into = merged.setdefault(
            (row["bucket"], label),
            {
                "bucket": row["bucket"],
                "label": label,
                "requests": 0,
                "prompt": 0,
                "completion": 0,
                "reasoning": 0,
                "spend_nanos": 0,
            },
        )
        for name in ("requests", "prompt", "completion", "reasoning", "spend_nanos"):
            into[name] += int(row[name] or 0)
    return sorted(merged.values(), key=lambda r: (r["bucket"], -r["spend_nanos"], -r["requests"], r["label"]))


def activity_filter_choices(
    *, organization: Organization, since: datetime, until: datetime | None = None
) -> dict[str, list[Any]]:
    """The models, providers, keys and apps this organization used in the window, for the filter selects
    (read from the rollups like the chart, so a busy organization's page does not scan its raw rows)."""

    def used(*dims: str) -> set[tuple[Any, ...]]:
        rows = usage_rows(organization=organization, since=since, until=until, dims=dims)
        return {tuple(row[d] for d in dims) for row in rows if row["requests"]}

    return choices_from(used)


def choices_from(used: Callable[..., set[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    """The filter selects, given `used(*dims)`: the distinct values of those dims with traffic."""
    keys = sorted(
        (name, str(public_id)) for public_id, name in used("api_key__public_id", "api_key__name") if public_id
    )
    return {
        "models": sorted(model for (model,) in used("model"))[:200],
        "providers": sorted(slug for (slug,) in used("provider_slug"))[:100],
        "keys": [(public_id, name) for name, public_id in keys][:200],
        "apps": sorted(
            {label for title, referer in used("app_title", "http_referer") if (label := app_label(title, referer))}
        )[:200],
    }


def generation_list(
    *, organization: Organization, since: datetime, filters: Filters | None = None, until: datetime | None = None
) -> QuerySet[Generation]:
    """Newest first; the page pages it (50 a page)."""
    return (
        _scoped(organization=organization, since=since, filters=filters, until=until)
        .select_related("api_key")
        .order_by("-created_at", "-id")
    )


def _keyset_before(qs: QuerySet[Generation], cursor: tuple[datetime, int]) -> QuerySet[Generation]:
    # (created_at, id) < cursor, written as a range plus an exclusion: an OR of the two conditions
    # stops PostgreSQL from walking the (organization, created_at) index.
    created, pk = cursor
    return qs.filter(created_at__lte=created).exclude(created_at=created, id__gte=pk)


def cursor_parse(raw: str) -> tuple[datetime, int] | None:
    """A list page's `before` cursor ("<iso time>_<id>"); anything malformed means the first page."""
    stamp, _, pk = raw.rpartition("_")
    try:
        moment = datetime.fromisoformat(stamp)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), int(pk)
    except ValueError:
        return None


def generation_page(
    *,
    organization: Organization,
    since: datetime,
    filters: Filters | None = None,
    until: datetime | None = None,
    before: tuple[datetime, int] | None = None,
    size: int = PAGE_SIZE,
) -> tuple[list[Generation], str]:
    """One page of the list, newest first, after the `before` cursor, and the cursor of the next page ("" if
    none). Keyset paging: a deep page costs what the first does, and no COUNT(*) runs over the raw rows."""
    qs = generation_list(organization=organization, since=since, filters=filters, until=until)
    if before is not None:
        qs = _keyset_before(qs, before)
    rows = list(qs[: size + 1])
    if len(rows) <= size:
        return rows, ""
    last = rows[size - 1]
    return rows[:size], f"{last.created_at.astimezone(UTC).isoformat()}_{last.pk}"


def generation_get(*, organization: Organization, generation_id: str) -> Generation | None:
    return (
        Generation.objects.filter(organization=organization, generation_id=generation_id)
        .select_related("api_key", "user")
        .first()
    )


EXPORT_COLUMNS = (
    "created_at",
    "generation_id",
    "model",
    "provider_slug",
    "api_key__name",
    "app_title",
    "http_referer",
    "tokens_prompt",
    "tokens_completion",
    "tokens_reasoning",
    "tokens_cached",
    "cost_nanos",
    "is_byok",
    "latency_ms",
    "ttft_ms",
    "finish_reason",
    "cancelled",
    "usage_estimated",
)
EXPORT_CHUNK = 2000


def generation_export_chunks(
    *,
    organization: Organization,
    since: datetime,
    filters: Filters | None = None,
    chunk: int = EXPORT_CHUNK,
    until: datetime | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """The window's generations, newest first, `chunk` rows per query (keyset paging on created_at and
    id), so an export of millions of rows holds one chunk in memory, never the whole result."""
    base = _scoped(organization=organization, since=since, filters=filters, until=until).order_by("-created_at", "-id")
    cursor: tuple[datetime, int] | None = None
    while True:
        qs = base
        if cursor is not None:
            qs = _keyset_before(qs, cursor)
        rows = list(qs.values_list("id", *EXPORT_COLUMNS)[:chunk])
        if not rows:
            return
        yield [row[1:] for row in rows]
        if len(rows) < chunk:
            return
        cursor = (rows[-1][1], rows[-1][0])


API_DAYS = 30


def activity_daily(
    *, organization: Organization, today: datetime, day: datetime | None = None, where: Q | None = None
) -> list[dict[str, Any]]:
    """`GET /api/v1/activity`'s rows: per UTC day x model x endpoint over the last `API_DAYS` completed
    days before `today` (a UTC midnight), or only `day`; newest day first, biggest spend first."""
    since, until = (day, day + timedelta(days=1)) if day else (today - timedelta(days=API_DAYS), today)
    dims = ("model", "endpoint_tag", "provider_name")
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in usage_rows(organization=organization, since=since, until=until, where=where, dims=dims, unit="day"):
        key = (row["bucket"], *(row[d] for d in dims))
        into = merged.setdefault(
            key, dict.fromkeys(("requests", "spend_nanos", "byok_nanos", "prompt", "completion", "reasoning"), 0)
        )
        for name in into:
            into[name] += row[name]
    out = [
        {"bucket": key[0], "model": key[1], "endpoint_tag": key[2], "provider_name": key[3], **sums}
        for key, sums in merged.items()
    ]
    return sorted(out, key=lambda r: (-r["bucket"].timestamp(), -r["spend_nanos"], r["model"], r["endpoint_tag"]))
