"""The model page's per-endpoint health over time (from the rollups) and the catalog's sort orders."""

from __future__ import annotations

from datetime import UTC, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from analytics.models import EndpointHealthRollup, RollupWatermark
from analytics.public import endpoint_health_series
from analytics.rollup import floor_hour, rollup_run
from billing.models import Generation
from proxy.catalog.services import catalog_load
from tests.support import Triad

pytestmark = pytest.mark.django_db


def attempt(tag: str, status: int, provider: str = "") -> dict[str, Any]:
    return {
        "provider_name": provider or tag.title(),
        "endpoint_tag": tag,
        "model_permaslug": "openai/gpt-4o",
        "status": status,
        "latency": 50,
    }


def served(triad: Triad, n: int, hours_ago: float, tag: str, attempts: list[dict[str, Any]], **extra: Any) -> None:
    values: dict[str, Any] = {
        "latency_ms": 400,
        "ttft_ms": 100,
        "generation_time_ms": 500,
        "tokens_completion": 50,
    } | extra
    Generation.objects.create(
        generation_id=f"gen-health-{n}",
        organization=triad.org if n % 2 else triad.outsider_org,
        model="openai/gpt-4o",
        provider_slug=tag,
        provider_name=tag.title(),
        endpoint_tag=tag,
        provider_responses=attempts,
        created_at=timezone.now() - timedelta(hours=hours_ago),
        **values,
    )


def test_endpoint_health_is_rolled_up_per_hour_and_charted(client: Client, triad: Triad, shipped_catalog: Any) -> None:
    catalog_load(data=shipped_catalog)
    cache.clear()
    # Two hours ago: "azure" failed once and the request failed over to "openai", which served it; one more
    # request straight to "openai". Five hours ago: one "azure" success with its own timings.
    served(triad, 1, 2, "openai", [attempt("azure", 503), attempt("openai", 200)], latency_ms=300)
    served(triad, 2, 2, "openai", [attempt("openai", 200)], latency_ms=500, tokens_completion=100)
    served(triad, 3, 5, "azure", [attempt("azure", 200)], generation_time_ms=1000, tokens_completion=20)
    served(triad, 4, 30, "azure", [])  # no attempt list: counts as one good attempt; outside 24 h
    rollup_run(now=timezone.now() + timedelta(hours=1))

    two_ago = floor_hour(timezone.now() - timedelta(hours=2))
    rows = {r.endpoint_tag: r for r in EndpointHealthRollup.objects.filter(bucket=two_ago)}
    assert (rows["azure"].attempts, rows["azure"].failures, rows["azure"].requests) == (1, 1, 0)
    assert (rows["openai"].attempts, rows["openai"].failures, rows["openai"].requests) == (2, 0, 2)
    assert (rows["openai"].gen_tokens, rows["openai"].gen_time_ms) == (150, 1000)

    health = endpoint_health_series(model="openai/gpt-4o", range_key="24h")
    assert len(health["labels"]) == 24
    by_tag = {ep["tag"]: ep for ep in health["endpoints"]}
    assert [ep["tag"] for ep in health["endpoints"]] == ["openai", "azure"]  # most requests first
    assert by_tag["openai"]["uptime"][-3] == 100 and by_tag["azure"]["uptime"][-3] == 0
    assert by_tag["openai"]["latency"][-3] == 400 and by_tag["openai"]["throughput"][-3] == 150.0
    assert by_tag["azure"]["uptime"][-6] == 100 and by_tag["azure"]["throughput"][-6] == 20.0
    assert by_tag["azure"]["latency"][-3] is None  # it served nothing that hour: a gap, not a zero
    assert sum(v is not None for v in by_tag["openai"]["uptime"]) == 1
    week = endpoint_health_series(model="openai/gpt-4o", range_key="7d")
    week_azure = next(ep for ep in week["endpoints"] if ep["tag"] == "azure")
    assert len(week["labels"]) == 168 and sum(v is not None for v in week_azure["uptime"]) == 3

    page = client.get("/models/openai/gpt-4o/")
    assert page.status_code == 200
    assert page.context["health"] == health
    html = page.content.decode()
    assert 'id="health-uptime-canvas"' in html and 'id="model-health"' in html
    assert client.get("/models/openai/gpt-4o/", {"health": "7d"}).context["health"]["range"] == "7d"
    assert client.get("/models/openai/gpt-4o/", {"health": "forever"}).context["health_range"] == "24h"

    # Idempotent: rebuilding the same hours gives the same rows.
    before = sorted(EndpointHealthRollup.objects.values_list("bucket", "endpoint_tag", "attempts", "failures"))
    RollupWatermark.objects.update(through=timezone.now() - timedelta(days=3))
    rollup_run(now=timezone.now() + timedelta(hours=1))
    assert sorted(EndpointHealthRollup.objects.values_list("bucket", "endpoint_tag", "attempts", "failures")) == before


def test_a_model_without_traffic_says_so(client: Client, shipped_catalog: Any) -> None:
    catalog_load(data=shipped_catalog)
    cache.clear()
    page = client.get("/models/openai/gpt-4o/")
    assert page.context["health"]["endpoints"] == []
    assert 'id="health-empty"' in page.content.decode()


def _ids(response: Any) -> list[str]:
    return [row["id"] for row in response.context["rows"]]


def _price(record: dict[str, Any]) -> Decimal:
    return Decimal(record["pricing"]["prompt"])


def test_sorting_changes_the_order_and_survives_filters_and_paging(
    client: Client, triad: Triad, shipped_catalog: Any
) -> None:
    catalog_load(data=shipped_catalog)
    cache.clear()
    records = {m["id"]: m for m in client.get("/api/v1/models").json()["data"]}
    newest = _ids(client.get("/models/"))
    cheap = client.get("/models/", {"sort": "price-asc", "supports": "tools"})
    cheap_ids = _ids(cheap)
    assert cheap_ids != newest
    prices = [_price(records[i]) for i in cheap_ids if _price(records[i]) >= 0]
    assert prices == sorted(prices)
    assert all(row["tools"] for row in cheap.context["rows"])
    dear = _ids(client.get("/models/", {"sort": "price-desc"}))
    dear_prices = [_price(records[i]) for i in dear if _price(records[i]) >= 0]
    assert dear_prices == sorted(dear_prices, reverse=True) and dear_prices[0] > prices[0]
    longest = client.get("/models/", {"sort": "context"})
    contexts = [row["context_length"] or 0 for row in longest.context["rows"]]
    assert contexts == sorted(contexts, reverse=True)
    # Paging keeps the sort and the filters: page 2 continues the same order.
    assert "sort=price-asc" in cheap.context["query"] and "supports=tools" in cheap.context["query"]
    second = _ids(client.get("/models/", {"sort": "price-asc", "supports": "tools", "page": 2}))
    second_prices = [_price(records[i]) for i in second if _price(records[i]) >= 0]
    assert second_prices and prices[-1] <= second_prices[0]
    html = cheap.content.decode()
    assert '<option value="price-asc" selected>' in html and "sort=price-asc" in html

    # Popularity: tokens from our own traffic over the last 7 days, read from the rollups.
    target = newest[-1]
    Generation.objects.create(
        generation_id="gen-popular",
        organization=triad.org,
        model=target,
        provider_slug="p",
        provider_name="P",
        tokens_prompt=10_000,
        created_at=timezone.now().astimezone(UTC) - timedelta(days=2),
    )
    Generation.objects.create(
        generation_id="gen-old",
        organization=triad.org,
        model=newest[-2],
        provider_slug="p",
        provider_name="P",
        tokens_prompt=99_000,
        created_at=timezone.now() - timedelta(days=9),  # outside the 7 days
    )
    rollup_run(now=timezone.now() + timedelta(hours=1))
    cache.clear()
    popular = _ids(client.get("/models/", {"sort": "popular"}))
    assert popular[0] == target and popular[0] != newest[0]
    assert client.get("/models/", {"sort": "nonsense"}).context["sort"] == ""
