"""Reads for the public pages: rankings, catalog popularity and per-endpoint health over time.

Every organization's usage together, from the rollup tables only (never the raw generations), and only
as aggregates: nothing here returns an organization, a key or a user. An app appears under the name
its client sent (X-Title) or its public referer host. The pages cache these answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from analytics.models import EndpointHealthRollup
from analytics.rollup import floor_day, floor_hour
from analytics.selectors import app_label
from analytics.usage import rollup_rows_all

RANKING_PERIODS: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}
HEALTH_RANGES: dict[str, int] = {"24h": 24, "7d": 24 * 7}  # range key -> hours charted


def rankings_top(*, period: str, by: str, limit: int = 20, now: datetime | None = None) -> list[dict[str, Any]]:
    """Top models (`by="model"`) or apps (`by="app"`) by total tokens over the period, with each one's share."""
    since = floor_hour(now or timezone.now()) - RANKING_PERIODS.get(period, RANKING_PERIODS["week"])
    fields = ("app_title", "http_referer") if by == "app" else ("model",)
    merged: dict[str, dict[str, Any]] = {}
    for row in rollup_rows_all(since=since, dims=fields):
        label = app_label(row["app_title"] or "", row["http_referer"] or "") if by == "app" else row["model"]
        if not label:
            continue  # untitled traffic without a referer is nobody's app
        into = merged.setdefault(label, {"label": label, "tokens": 0, "requests": 0})
        into["tokens"] += row["tokens"]
        into["requests"] += row["requests"]
    total = sum(r["tokens"] for r in merged.values()) or 1
    ranked = sorted((r for r in merged.values() if r["tokens"]), key=lambda r: (-r["tokens"], r["label"]))[:limit]
    for r in ranked:
        r["share"] = r["tokens"] / total
    return ranked


def rankings_share_series(*, days: int = 30, top: int = 8, now: datetime | None = None) -> dict[str, Any]:
    """Each UTC day's token share of the top models over the last `days` days (the rest as "Other")."""
    today = floor_day(now or timezone.now())
    starts = [today - timedelta(days=i) for i in range(days - 1, -1, -1)]
    index = {start: i for i, start in enumerate(starts)}
    by_model: dict[str, list[int]] = {}
    for row in rollup_rows_all(since=starts[0], dims=("model",), unit="day"):
        if (slot := index.get(row["bucket"])) is not None:
            by_model.setdefault(row["model"], [0] * days)[slot] += row["tokens"]
    ranked = sorted(by_model.items(), key=lambda item: (-sum(item[1]), item[0]))
    shown = ranked[:top]
    if ranked[top:]:
        shown.append(("Other", [sum(col) for col in zip(*(v for _, v in ranked[top:]), strict=True)]))
    totals = [sum(col) for col in zip(*(v for _, v in ranked), strict=True)] if ranked else []
    return {
        "labels": [start.strftime("%b %-d") for start in starts],
        "series": [
            {"label": label, "data": [round(100 * v / t, 2) if t else 0 for v, t in zip(values, totals, strict=True)]}
            for label, values in shown
        ],
    }


def model_popularity(*, days: int = 7, now: datetime | None = None) -> dict[str, int]:
    """Tokens (prompt + completion) per model over the last `days` days of our own traffic."""
    since = floor_hour(now or timezone.now()) - timedelta(days=days)
    out: dict[str, int] = {}
    for row in rollup_rows_all(since=since, dims=("model",)):
        out[row["model"]] = out.get(row["model"], 0) + int(row["tokens"])
    return out


def endpoint_health_series(*, model: str, range_key: str, now: datetime | None = None) -> dict[str, Any]:
    """Per endpoint of `model`, one point per hour of the range: uptime (% of attempts that succeeded),
    mean latency and TTFT (ms), throughput (output tokens per second of generation time).

    An hour with no traffic on an endpoint is null (a gap in the chart), not a zero: no measurement is
    not a bad measurement. The current hour is included once it is rolled up.
    """
    hours = HEALTH_RANGES.get(range_key, HEALTH_RANGES["24h"])
    last = floor_hour(now or timezone.now())
    starts = [last - timedelta(hours=i) for i in range(hours - 1, -1, -1)]
    index = {start: i for i, start in enumerate(starts)}
    rows = (
        EndpointHealthRollup.objects.filter(model=model, bucket__gte=starts[0], bucket__lte=last)
        .values("bucket", "endpoint_tag")
        .annotate(
            attempts_sum=Sum("attempts"),
            failures_sum=Sum("failures"),
            requests_sum=Sum("requests"),
            latency=Sum("latency_sum_ms"),
            latency_count=Sum("latency_n"),
            ttft=Sum("ttft_sum_ms"),
            ttft_count=Sum("ttft_n"),
            tokens=Sum("gen_tokens"),
            time_ms=Sum("gen_time_ms"),
        )
        .order_by()
    )
    names = dict(
        EndpointHealthRollup.objects.filter(model=model, bucket__gte=starts[0])
        .exclude(provider_name="")
        .values_list("endpoint_tag", "provider_name")
        .distinct()
    )
    endpoints: dict[str, dict[str, Any]] = {}
    for row in rows:
        slot = index.get(row["bucket"].astimezone(UTC))
        if slot is None:
            continue
        tag = row["endpoint_tag"]
        ep = endpoints.setdefault(
            tag,
            {
                "tag": tag,
                "provider": names.get(tag, tag),
                "uptime": [None] * hours,
                "latency": [None] * hours,
                "ttft": [None] * hours,
                "throughput": [None] * hours,
                "requests": 0,
                "attempts": 0,
            },
        )
        ep["requests"] += row["requests_sum"]
        ep["attempts"] += row["attempts_sum"]
        if row["attempts_sum"]:
            ep["uptime"][slot] = round(100 * (row["attempts_sum"] - row["failures_sum"]) / row["attempts_sum"], 2)
        if row["latency_count"]:
            ep["latency"][slot] = round(row["latency"] / row["latency_count"])
        if row["ttft_count"]:
            ep["ttft"][slot] = round(row["ttft"] / row["ttft_count"])
        if row["time_ms"]:
            ep["throughput"][slot] = round(row["tokens"] * 1000 / row["time_ms"], 1)
    label_format = "%H:00" if hours <= 24 else "%b %-d %H:00"
    return {
        "range": range_key if range_key in HEALTH_RANGES else "24h",
        "labels": [start.strftime(label_format) for start in starts],
        "endpoints": sorted(endpoints.values(), key=lambda ep: (-ep["requests"], ep["tag"])),
    }
