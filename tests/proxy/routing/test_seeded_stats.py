"""Seeded statistics: with no samples of its own, routing orders by the published latency, throughput
and uptime (catalog or operator); once samples exist, by what it measured."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest
from django.test import Client

from proxy.catalog.snapshot import catalog_from_db
from proxy.health import EndpointHealth, HealthView
from proxy.models import Endpoint, Model, Provider
from proxy.routing import RoutePlan, RouteRequest, route
from proxy.routing.prefs import parse_provider_prefs
from tests.proxy.routing.support import USD_PER_MTOK, cand, catalog, model

NO_HEALTH = HealthView()


def plan(cat, health: HealthView = NO_HEALTH, seed: int = 1, **kw) -> RoutePlan:  # type: ignore[no-untyped-def]
    req = RouteRequest(models=("acme/model",), prefs=parse_provider_prefs(kw.pop("provider", None)), **kw)
    return route(req, cat, health, random.Random(seed))


def tags(p: RoutePlan) -> list[str]:
    return [a.candidate.tag for a in p.attempts]


# The dearest is published fastest; "plain" publishes nothing.
SLOW = cand("slow", prompt=USD_PER_MTOK, completion=0, endpoint_id=201)
FAST = cand("fast", prompt=3 * USD_PER_MTOK, completion=0, endpoint_id=202)
PLAIN = cand("plain", prompt=2 * USD_PER_MTOK, completion=0, endpoint_id=203)
SEEDED = catalog(
    model(
        "acme/model",
        replace(SLOW, published_latency_ms=900, published_throughput_tps=40),
        replace(FAST, published_latency_ms=200, published_throughput_tps=150),
        PLAIN,
    )
)


def test_without_samples_the_published_figures_order_the_speed_sorts() -> None:
    assert tags(plan(SEEDED, provider={"sort": "latency"})) == ["fast", "slow", "plain"]
    assert tags(plan(SEEDED, provider={"sort": "throughput"})) == ["fast", "slow", "plain"]
    # Without published figures every endpoint is unknown and price decides (as before).
    bare = catalog(model("acme/model", SLOW, FAST, PLAIN))
    assert tags(plan(bare, provider={"sort": "latency"})) == ["slow", "plain", "fast"]


def test_measured_figures_replace_the_published_ones_once_samples_exist() -> None:
    health = HealthView(
        {
            201: EndpointHealth(ttft_p50_ms=100, throughput_p50=300),  # measured: the slow one is fast here
            202: EndpointHealth(ttft_p50_ms=700, throughput_p50=20),
        }
    )
    assert tags(plan(SEEDED, health, provider={"sort": "latency"})) == ["slow", "fast", "plain"]
    assert tags(plan(SEEDED, health, provider={"sort": "throughput"})) == ["slow", "fast", "plain"]
    # A measured endpoint and a published-only one compare on the same scale.
    only_slow = HealthView({201: EndpointHealth(ttft_p50_ms=500, throughput_p50=100)})
    assert tags(plan(SEEDED, only_slow, provider={"sort": "latency"})) == ["fast", "slow", "plain"]
    assert tags(plan(SEEDED, only_slow, provider={"sort": "throughput"})) == ["fast", "slow", "plain"]


def test_preferences_judge_unmeasured_endpoints_by_their_published_figures() -> None:
    for seed in range(20):
        ordered = tags(plan(SEEDED, seed=seed, provider={"preferred_max_latency": 0.5}))
        assert ordered[-1] == "slow"  # published 900 ms; "plain" is unknown and not penalized
        ordered = tags(plan(SEEDED, seed=seed, provider={"preferred_min_throughput": 100}))
        assert ordered[-1] == "slow"


def test_nitro_uses_the_published_throughput() -> None:
    req = RouteRequest(models=("acme/model:nitro",))
    assert route(req, SEEDED, NO_HEALTH, random.Random(1)).attempts[0].candidate.tag == "fast"


# Two endpoints at one price, one published at 90% uptime; a third, cheaper, also at 90%.
GOOD = cand("good", endpoint_id=301)
FLAKY = replace(cand("flaky", endpoint_id=302), published_uptime_bp=9_000)
CHEAP_FLAKY = replace(cand("cheapflaky", prompt=USD_PER_MTOK // 2, endpoint_id=303), published_uptime_bp=9_000)
OK_UPTIME = replace(cand("fine", endpoint_id=304), published_uptime_bp=9_950)


def test_a_poor_published_uptime_breaks_ties_after_price_only() -> None:
    cat = catalog(model("acme/model", FLAKY, GOOD, CHEAP_FLAKY))
    assert tags(plan(cat, provider={"sort": "price"})) == ["cheapflaky", "good", "flaky"]
    # At one price the lower endpoint id would go first (the unflagged case); the poor uptime overrides that.
    cat2 = catalog(model("acme/model", replace(GOOD, endpoint_id=402), replace(FLAKY, endpoint_id=401)))
    assert tags(plan(cat2, provider={"sort": "price"})) == ["good", "flaky"]
    unflagged = catalog(model("acme/model", replace(GOOD, endpoint_id=402), replace(cand("flaky"), endpoint_id=401)))
    assert tags(plan(unflagged, provider={"sort": "price"})) == ["flaky", "good"]


def test_load_balancing_puts_a_poor_uptime_behind_its_equal_price_peers_only() -> None:
    cat = catalog(model("acme/model", FLAKY, GOOD, OK_UPTIME, CHEAP_FLAKY))
    firsts = set()
    for seed in range(300):
        ordered = tags(plan(cat, seed=seed))
        assert ordered.index("flaky") > ordered.index("good")
        assert ordered.index("flaky") > ordered.index("fine")
        firsts.add(ordered[0])
    # The cheaper 90% endpoint keeps its price weight (4x as likely as each $2 one): it is often first.
    assert "cheapflaky" in firsts and "good" in firsts and "fine" in firsts


def test_the_uptime_prior_stops_counting_once_the_endpoint_is_measured() -> None:
    cat = catalog(model("acme/model", replace(GOOD, endpoint_id=402), replace(FLAKY, endpoint_id=401)))
    measured = HealthView({401: EndpointHealth(latency_p50_ms=300)})
    assert tags(plan(cat, measured, provider={"sort": "price"})) == ["flaky", "good"]


@pytest.mark.django_db
def test_figures_an_operator_sets_in_the_admin_order_routing(admin_client: Client) -> None:
    provider = Provider.objects.create(slug="local", name="Local", requires_api_key=False, base_url="http://x")
    acme = Model.objects.create(slug="acme/model", name="Acme", input_modalities=["text"], output_modalities=["text"])

    def endpoint(tag: str, price: int) -> Endpoint:
        return Endpoint.objects.create(
            model=acme, provider=provider, tag=tag, upstream_model="m", context_length=8192,
            prompt_nanos_per_mtok=price, completion_nanos_per_mtok=price,
        )  # fmt: skip

    cheap, dear = endpoint("local/cheap", 100), endpoint("local/dear", 900)
    page = admin_client.get(f"/admin/proxy/endpoint/{dear.pk}/change/")
    data = {k: v for k, v in page.context["adminform"].form.initial.items() if v is not None}
    data.update(
        model=acme.pk, provider=provider.pk, supported_parameters="[]", published_latency_ms="150",
        published_throughput_tps="220", published_uptime="99.5",
    )  # fmt: skip
    response = admin_client.post(f"/admin/proxy/endpoint/{dear.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    dear.refresh_from_db()
    assert (dear.published_latency_ms, dear.published_throughput_tps) == (150, 220)
    assert dear.published_uptime == Decimal("99.50")
    # The edit is an override: a catalog load keeps it (proxy/catalog/services.py).
    assert {"published_latency_ms", "published_throughput_tps", "published_uptime"} <= set(dear.overridden)

    snap = catalog_from_db()
    fast_first = route(
        RouteRequest(models=("acme/model",), prefs=parse_provider_prefs({"sort": "latency"})),
        snap,
        NO_HEALTH,
        random.Random(1),
    )
    assert [a.candidate.tag for a in fast_first.attempts] == ["local/dear", "local/cheap"]
    measured = HealthView({cheap.pk: EndpointHealth(ttft_p50_ms=90), dear.pk: EndpointHealth(ttft_p50_ms=400)})
    by_measure = route(
        RouteRequest(models=("acme/model",), prefs=parse_provider_prefs({"sort": "latency"})),
        snap,
        measured,
        random.Random(1),
    )
    assert [a.candidate.tag for a in by_measure.attempts] == ["local/cheap", "local/dear"]
