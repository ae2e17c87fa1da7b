"""Routing over the real catalog (proxy/catalog/catalog.json loaded into the test database)."""

from __future__ import annotations

import random

import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings

from proxy.catalog.snapshot import CatalogSnapshot, catalog_from_db
from proxy.credentials import provider_env_prefix
from proxy.health import HealthView
from proxy.models import Provider
from proxy.routing import RouteRequest, route
from proxy.routing.prefs import RoutingError, parse_provider_prefs


@pytest.fixture
def real_catalog(db: None, settings: Settings) -> CatalogSnapshot:
    call_command("catalog_load", verbosity=0)
    # A platform key for every provider, as in a deployment that configured them all.
    slugs = Provider.objects.values_list("slug", flat=True)
    settings.PROVIDER_ENV = {f"{provider_env_prefix(slug)}_API_KEY": "sk-test" for slug in slugs}
    snapshot = catalog_from_db()
    assert {c.provider_slug for m in snapshot.models.values() for c in m.candidates} <= snapshot.configured
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
