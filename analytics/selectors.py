"""Activity reads over the settled generation records. Read-only; always scoped to one organization."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, F, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from billing.models import Generation
from organizations.models import Organization

RANGES = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
GROUPS = {"model": "model", "key": "api_key__name", "provider": "provider_name", "app": "http_referer"}


@dataclass(frozen=True)
class Totals:
    requests: int
    spend_nanos: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int


def _in_range(*, organization: Organization, since: datetime) -> QuerySet[Generation]:
    return Generation.objects.filter(organization=organization, created_at__gte=since)


def activity_since(range_key: str) -> datetime:
    return timezone.now() - RANGES.get(range_key, RANGES["7d"])


def activity_totals(*, organization: Organization, since: datetime) -> Totals:
    row = _in_range(organization=organization, since=since).aggregate(
        requests=Count("id"),
        spend=Coalesce(Sum("cost_nanos"), 0),
        prompt=Coalesce(Sum("tokens_prompt"), 0),
        completion=Coalesce(Sum("tokens_completion"), 0),
        reasoning=Coalesce(Sum("tokens_reasoning"), 0),
    )
    return Totals(row["requests"], row["spend"], row["prompt"], row["completion"], row["reasoning"])


def activity_grouped(*, organization: Organization, since: datetime, group: str) -> list[dict[str, Any]]:
    """Requests, tokens, spend and mean latency per model, key, provider or app, biggest spend first."""
    field = GROUPS.get(group, GROUPS["model"])
    return [
        dict(row)
        for row in _in_range(organization=organization, since=since)
        .values(label=F(field))
        .annotate(
            requests=Count("id"),
            spend_nanos=Coalesce(Sum("cost_nanos"), 0),
            tokens=Coalesce(Sum(F("tokens_prompt") + F("tokens_completion")), 0),
            latency_ms=Avg("latency_ms"),
        )
        .order_by("-spend_nanos", "-requests")[:50]
    ]


def activity_daily(*, organization: Organization, since: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in _in_range(organization=organization, since=since)
        .annotate(day=TruncDay("created_at"))
        .values("day")
        .annotate(requests=Count("id"), spend_nanos=Coalesce(Sum("cost_nanos"), 0))
        .order_by("day")
    ]
    peak = max((r["requests"] for r in rows), default=0)
    for r in rows:
        r["bar_percent"] = round(100 * r["requests"] / peak) if peak else 0
    return rows


def generation_recent(*, organization: Organization, limit: int = 50) -> QuerySet[Generation]:
    return (
        Generation.objects.filter(organization=organization).select_related("api_key").order_by("-created_at")[:limit]
    )
