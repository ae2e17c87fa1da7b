"""Routing over the real catalog (proxy/catalog/catalog.json loaded into the test database)."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command

from proxy.catalog.snapshot import CatalogSnapshot, catalog_from_db
from proxy.health import HealthView
from proxy.prefs import RoutingError, parse_provider_prefs
from proxy.routing import RouteRequest, route


@pytest.fixture
def real_catalog(db: None) -> CatalogSnapshot:
    call_command("catalog_load", verbosity=0)
    snapshot = catalog_from_db()
    assert len(snapshot.models) > 100
    return snapshot


PREFS = [
    None,
    {"sort": "throughput"},
    {"data_collection": "deny", "max_price": {"prompt": 1, "completion": 5}},
    {"order": ["openai", "anthropic", "google-vertex"], "allow_fallbacks": False},
    {"zdr": True, "quantizations": ["fp8", "bf16"]},
]


def test_it_plans_or_explains_every_model_in_the_catalog(real_catalog: CatalogSnapshot) -> None:
    rng = random.Random(3)
    planned = 0
    for slug in real_catalog.models:
        for raw in PREFS:
            for params in (frozenset(), frozenset({"tools", "tool_choice"})):
                req = RouteRequest(
                    models=(slug,),
                    prefs=parse_provider_prefs(raw),
                    prompt_tokens=2_000,
                    max_tokens=1_000,
                    params=params,
                )
                try:
                    plan = route(req, real_catalog, HealthView(), rng)
                except RoutingError as error:
                    assert error.status in (400, 404), (slug, raw, error.message)
                    continue
                planned += 1
                assert plan.attempts
                for attempt in plan.attempts:
                    assert attempt.candidate.variant not in ("router",)
                    if plan.router is None:
                        assert attempt.model_slug in (slug, slug.rsplit(":", 1)[0])
    assert planned > len(real_catalog.models)


def test_it_routes_the_real_auto_and_free_routers(real_catalog: CatalogSnapshot) -> None:
    rng = random.Random(5)
    auto = route(RouteRequest(models=("openrouter/auto",), prompt_tokens=500), real_catalog, HealthView(), rng)
    assert auto.router == "openrouter/auto"
    for attempt in auto.attempts:
        info = real_catalog.models[attempt.model_slug]
        assert "text" in info.output_modalities
    free = route(RouteRequest(models=("openrouter/free",), prompt_tokens=500), real_catalog, HealthView(), rng)
    assert all(a.model_slug.endswith(":free") for a in free.attempts)
