"""Variant suffixes (contract 5.2), openrouter/auto (5.4) and middle-out endpoint choice (2.4)."""

from __future__ import annotations

import random

import pytest
from django.test import override_settings

from proxy.health import EndpointHealth, HealthView
from proxy.routing import RoutePlan, RouteRequest, route
from proxy.routing.auto import auto_models
from proxy.routing.prefs import RoutingError, parse_provider_prefs
from tests.proxy.routing.support import ALL_PARAMS, USD_PER_MTOK, cand, catalog, model

NO_HEALTH = HealthView()


def plan(cat, health: HealthView = NO_HEALTH, seed: int = 7, **kw) -> RoutePlan:  # type: ignore[no-untyped-def]
    provider = kw.pop("provider", None)
    req = RouteRequest(models=kw.pop("models", ("acme/model",)), prefs=parse_provider_prefs(provider), **kw)
    return route(req, cat, health, random.Random(seed))


def tags(p: RoutePlan) -> list[str]:
    return [a.candidate.tag for a in p.attempts]


CHEAP = cand("cheap", prompt=USD_PER_MTOK // 10, endpoint_id=11)
FAST = cand("fast", prompt=5 * USD_PER_MTOK, endpoint_id=12)
NO_REASONING = cand("plain", params=ALL_PARAMS - {"reasoning"}, endpoint_id=13)
FREE = cand("freebie", prompt=0, completion=0, variant="free", endpoint_id=14, trains=True)
PRIORITY = cand("fast", tag="fast/priority", variant="priority", endpoint_id=15)
FLEX = cand("cheap", tag="cheap/flex", variant="flex", prompt=1, completion=1, endpoint_id=16)
CAT = catalog(model("acme/model", CHEAP, FAST, NO_REASONING, FREE, PRIORITY, FLEX))
HEALTH = HealthView({12: EndpointHealth(throughput_p50=300), 11: EndpointHealth(throughput_p50=30)})


def test_it_serves_free_from_the_models_free_endpoints_and_reports_the_suffix() -> None:
    p = plan(CAT, models=("acme/model:free",))
    assert tags(p) == ["freebie"]
    assert p.attempts[0].model_slug == "acme/model:free"


def test_it_uses_a_catalog_free_model_when_there_is_one() -> None:
    cat = catalog(model("acme/model", CHEAP), model("acme/model:free", cand("gratis", prompt=0, completion=0)))
    p = plan(cat, models=("acme/model:free",))
    assert tags(p) == ["gratis"]
    assert p.attempts[0].model_slug == "acme/model:free"


def test_it_keeps_the_paid_id_off_free_endpoints() -> None:
    # Free endpoints have their own rate limits and often train on prompts: only `:free` uses them.
    assert "freebie" not in tags(plan(CAT))


def test_it_answers_404_for_free_when_the_model_has_no_free_endpoint() -> None:
    with pytest.raises(RoutingError) as info:
        plan(catalog(model("acme/model", CHEAP)), models=("acme/model:free",))
    assert info.value.status == 404
    assert info.value.message == "No endpoints found for acme/model:free"


def test_it_sorts_nitro_by_throughput_and_admits_priority_endpoints() -> None:
    p = plan(CAT, HEALTH, models=("acme/model:nitro",))
    assert tags(p)[0] == "fast"
    assert "fast/priority" in tags(p)
    assert "cheap/flex" not in tags(p)
    assert p.attempts[0].model_slug == "acme/model"


def test_it_sorts_floor_by_price_and_admits_flex_endpoints() -> None:
    p = plan(CAT, models=("acme/model:floor",))
    assert tags(p)[:2] == ["cheap/flex", "cheap"]
    assert "fast/priority" not in tags(p)


def test_it_turns_reasoning_on_for_thinking_on_endpoints_that_support_it() -> None:
    p = plan(CAT, models=("acme/model:thinking",))
    assert all(a.reasoning_default for a in p.attempts)
    assert "plain" not in tags(p)
    assert p.attempts[0].model_slug == "acme/model"


def test_it_uses_the_catalogs_extended_model_or_answers_404() -> None:
    with pytest.raises(RoutingError) as info:
        plan(CAT, models=("acme/model:extended",))
    assert info.value.status == 404
    cat = catalog(model("acme/model", CHEAP), model("acme/model:extended", cand("long", context=1_000_000)))
    p = plan(cat, models=("acme/model:extended",), prompt_tokens=500_000)
    assert tags(p) == ["long"]
    assert p.attempts[0].model_slug == "acme/model:extended"


def test_it_falls_back_from_an_unavailable_variant_to_the_next_model() -> None:
    cat = catalog(model("acme/model", CHEAP), model("acme/other", cand("other")))
    p = plan(cat, models=("acme/model:free", "acme/other"))
    assert tags(p) == ["other"]


# --- middle-out endpoint choice --------------------------------------------------------------------

SMALL = cand("small", context=8_000, endpoint_id=21)
MEDIUM = cand("medium", context=60_000, endpoint_id=22)
BIG = cand("big", context=200_000, endpoint_id=23)


def test_it_compresses_only_onto_endpoints_holding_half_the_prompt() -> None:
    cat = catalog(model("acme/model", SMALL, MEDIUM))
    p = plan(cat, prompt_tokens=100_000, max_tokens=1_000, middle_out=True)
    assert tags(p) == ["medium"]
    assert p.attempts[0].compress_to == 59_000


def test_it_compresses_onto_the_largest_context_when_none_holds_half() -> None:
    cat = catalog(model("acme/model", SMALL, MEDIUM))
    p = plan(cat, prompt_tokens=500_000, middle_out=True)
    assert tags(p) == ["medium"]
    assert p.attempts[0].compress_to == 60_000


def test_it_prefers_endpoints_the_prompt_fits_without_compression() -> None:
    cat = catalog(model("acme/model", MEDIUM, BIG))
    p = plan(cat, prompt_tokens=100_000, middle_out=True)
    assert [(a.candidate.tag, a.compress_to) for a in p.attempts] == [("big", None), ("medium", 60_000)]


def test_it_compresses_by_default_on_small_context_endpoints_only() -> None:
    cat = catalog(model("acme/model", SMALL))
    p = plan(cat, prompt_tokens=9_000)
    assert p.attempts[0].compress_to == 8_000
    with pytest.raises(RoutingError) as info:
        plan(cat, prompt_tokens=9_000, middle_out=False)
    assert info.value.status == 400
    assert info.value.metadata is not None
    assert info.value.metadata["error_type"] == "context_length_exceeded"
    with pytest.raises(RoutingError):
        plan(catalog(model("acme/model", MEDIUM)), prompt_tokens=70_000)


# --- openrouter/auto -------------------------------------------------------------------------------

AUTO_CAT = catalog(
    model("acme/pricey", cand("p", prompt=10 * USD_PER_MTOK), input_modalities=("text", "image")),
    model("acme/embed", cand("e", prompt=1, completion=0), output_modalities=("embeddings",)),
    model(
        "acme/cheap", cand("c", prompt=1, completion=1, params=frozenset({"temperature"}), context=8_000), context=8_000
    ),
    model("acme/mid", cand("m", prompt=USD_PER_MTOK)),
    model("acme/mid:free", cand("mf", prompt=0, completion=0)),
    model("openrouter/auto", cand("openrouter", variant="router", prompt=0, completion=0)),
    model("openrouter/fusion", cand("openrouter", variant="router")),
)


def test_it_ranks_models_without_quality_figures_cheapest_first() -> None:
    assert auto_models(RouteRequest(models=("openrouter/auto",)), AUTO_CAT) == ("acme/cheap", "acme/mid", "acme/pricey")


def test_it_routes_auto_to_the_first_models_that_fit_and_names_the_router() -> None:
    p = plan(AUTO_CAT, models=("openrouter/auto",))
    assert p.router == "openrouter/auto"
    assert [a.model_slug for a in p.attempts] == ["acme/cheap", "acme/mid", "acme/pricey"]


def test_it_skips_auto_candidates_that_lack_tools_images_or_context() -> None:
    with_tools = plan(AUTO_CAT, models=("openrouter/auto",), params=frozenset({"tools"}))
    assert with_tools.attempts[0].model_slug == "acme/mid"
    images = plan(AUTO_CAT, models=("openrouter/auto",), input_modalities=frozenset({"image"}))
    assert [a.model_slug for a in images.attempts] == ["acme/pricey"]
    long = plan(AUTO_CAT, models=("openrouter/auto",), prompt_tokens=50_000)
    assert "acme/cheap" not in [a.model_slug for a in long.attempts]


def test_it_honours_allowed_and_excluded_model_patterns() -> None:
    req = RouteRequest(models=("openrouter/auto",), auto_allowed=("acme/p*", "acme/mid"), auto_excluded=("*mid",))
    assert auto_models(req, AUTO_CAT) == ("acme/pricey",)


def test_it_uses_the_configured_ranking() -> None:
    with override_settings(AUTO_ROUTER_MODELS=["acme/pricey", "acme/nope", "acme/mid"], AUTO_ROUTER_FALLBACKS=1):
        p = plan(AUTO_CAT, models=("openrouter/auto",))
    assert [a.model_slug for a in p.attempts] == ["acme/pricey"]


def test_it_answers_404_when_no_model_fits_auto() -> None:
    with pytest.raises(RoutingError) as info:
        plan(AUTO_CAT, models=("openrouter/auto",), auto_allowed=("nobody/*",))
    assert info.value.status == 404
    assert info.value.message == "No models match your request and model restrictions"


def test_it_treats_auto_beta_like_auto() -> None:
    p = plan(AUTO_CAT, models=("openrouter/auto-beta",))
    assert p.router == "openrouter/auto-beta"
    assert p.attempts[0].model_slug == "acme/cheap"


def test_it_never_routes_to_a_router_placeholder_endpoint() -> None:
    with pytest.raises(RoutingError) as info:
        plan(AUTO_CAT, models=("openrouter/fusion",))
    assert info.value.status == 404


def test_it_routes_openrouter_free_to_a_random_fitting_free_model() -> None:
    cat = catalog(
        model("a/one:free", cand("x", prompt=0, completion=0, variant="free")),
        model("a/two:free", cand("y", prompt=0, completion=0, variant="free", params=frozenset({"temperature"}))),
        model("a/three:free", cand("z", prompt=0, completion=0, variant="free"), output_modalities=("speech",)),
        model("a/paid", cand("w")),
    )
    firsts = {plan(cat, models=("openrouter/free",), seed=s).attempts[0].model_slug for s in range(30)}
    assert firsts == {"a/one:free", "a/two:free"}
    with_tools = plan(cat, models=("openrouter/free",), params=frozenset({"tools"}))
    assert [a.model_slug for a in with_tools.attempts] == ["a/one:free"]
    assert with_tools.router == "openrouter/free"
    with pytest.raises(RoutingError) as info:
        plan(cat, models=("openrouter/free",), prompt_tokens=10**7)
    assert info.value.status == 404
