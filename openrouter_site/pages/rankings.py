"""Public rankings: top models and apps by tokens across all organizations' settled usage.

Aggregates only (no organization, key or user is named), read from the rollup tables (so they trail
live traffic by up to an hour and the rollup lag), computed at most every few minutes per period and
shared by every visitor through the cache.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics import public

CACHE_SECONDS = 300
PERIOD_LABELS = {"day": "Today", "week": "This week", "month": "This month"}


def _rankings(period: str) -> dict[str, Any]:
    def compute() -> dict[str, Any]:
        return {
            "models": public.rankings_top(period=period, by="model"),
            "apps": public.rankings_top(period=period, by="app"),
            "share": public.rankings_share_series(),
        }

    data = cache.get_or_set(f"rankings:v2:{period}", compute, CACHE_SECONDS)
    return data if isinstance(data, dict) else compute()


@require_GET
def rankings_page(request: HttpRequest) -> HttpResponse:
    period = request.GET.get("period", "week")
    period = period if period in public.RANKING_PERIODS else "week"
    context = {"active_nav": "rankings", "period": period, "periods": PERIOD_LABELS, **_rankings(period)}
    return render(request, "pages/rankings.html", context)
