"""The resolve step: one candidate set feeds both the health read and the ordering.

Router models (`openrouter/auto`, `openrouter/free`) resolve to the endpoints of the models they
pick, so those endpoints' health (open circuits, outages) applies to them; endpoints nobody holds a
key for are never candidates.
"""

from __future__ import annotations

import random

import pytest

from proxy.health import EndpointHealth, HealthView
from proxy.routing import RouteRequest, RoutingError, parse_provider_prefs, plan, resolve, route
from tests.proxy.routing.support import USD_PER_MTOK, cand, catalog, model

CHEAP = cand("cheapco", prompt=1, completion=1, endpoint_id=501)
MID = cand("midco", prompt=USD_PER_MTOK, endpoint_id=502)
DEAR = cand("dearco", prompt=10 * USD_PER_MTOK, endpoint_id=503)
AUTO_CAT = catalog(
    model("acme/cheap", CHEAP),
    model("acme/mid", MID),
    model("acme/dear", DEAR),
    model("acme/cheap:free", cand("freeco", prompt=0, completion=0, variant="free", endpoint_id=504)),
    model("acme/mid:free", cand("freeco2", prompt=0, completion=0, variant="free", endpoint_id=505)),
    model("openrouter/auto", cand("openrouter", variant="router", prompt=0, completion=0, endpoint_id=506)),
    model("openrouter/free", cand("openrouter", variant="router", prompt=0, completion=0, endpoint_id=507)),
)
OPEN = EndpointHealth(circuit_open=True, retry_after_s=12.0)


def RNG() -> random.Random:
    return random.Random(1)


NO_HEALTH = HealthView()


def models_of(req: RouteRequest, health: HealthView = NO_HEALTH, seed: int = 1) -> list[str]:
    return [a.model_slug for a in route(req, AUTO_CAT, health, random.Random(seed)).attempts]


def test_it_reads_the_health_of_the_models_auto_picks_not_of_the_router_row() -> None:
    resolved = resolve(RouteRequest(models=("openrouter/auto",)), AUTO_CAT, random.Random(1))
    assert resolved.router == "openrouter/auto"
    assert sorted(resolved.endpoint_ids) == [501, 502, 503]


def test_auto_skips_a_model_whose_only_endpoint_has_an_open_circuit() -> None:
    auto = RouteRequest(models=("openrouter/auto",))
    assert models_of(auto)[0] == "acme/cheap"
    assert models_of(auto, HealthView({501: OPEN})) == ["acme/mid", "acme/dear"]


def test_auto_answers_503_with_retry_after_when_every_pick_is_open() -> None:
    every = HealthView({501: OPEN, 502: OPEN, 503: EndpointHealth(circuit_open=True, retry_after_s=4.0)})
    with pytest.raises(RoutingError) as info:
        models_of(RouteRequest(models=("openrouter/auto",)), every)
    assert info.value.status == 503
    assert info.value.metadata == {"error_type": "provider_overloaded", "retry_after": 4.0}


def test_free_skips_a_free_model_whose_endpoint_has_an_open_circuit() -> None:
    free = RouteRequest(models=("openrouter/free",))
    assert sorted(resolve(free, AUTO_CAT, random.Random(1)).endpoint_ids) == [504, 505]
    for seed in range(10):
        assert models_of(free, HealthView({504: OPEN}), seed) == ["acme/mid:free"]


def test_it_drops_endpoints_without_credentials_before_anything_else_sees_them() -> None:
    cat = catalog(model("acme/model", cand("keyed", endpoint_id=601), cand("bare", endpoint_id=602)))
    cat_keyed_only = catalog(*cat.models.values(), configured=frozenset({"keyed"}))
    resolved = resolve(RouteRequest(models=("acme/model",)), cat_keyed_only, random.Random(1))
    assert resolved.endpoint_ids == [601]
    assert [a.candidate.tag for a in plan(resolved, NO_HEALTH, RNG()).attempts] == ["keyed"]


def test_byok_reaches_a_provider_the_platform_has_no_key_for_and_goes_first() -> None:
    cat = catalog(
        model("acme/model", cand("keyed", endpoint_id=611), cand("mine", prompt=9 * USD_PER_MTOK, endpoint_id=612)),
        configured=frozenset({"keyed"}),
    )
    attempts = route(
        RouteRequest(models=("acme/model",), byok_providers=frozenset({"mine"})), cat, NO_HEALTH, RNG()
    ).attempts
    assert [(a.candidate.tag, a.candidate.is_byok) for a in attempts] == [("mine", True), ("keyed", False)]


def test_it_answers_503_naming_the_variables_when_no_endpoint_has_credentials() -> None:
    cat = catalog(model("acme/model", cand("google-vertex"), cand("bare")), configured=frozenset())
    with pytest.raises(RoutingError) as info:
        route(RouteRequest(models=("acme/model",)), cat, NO_HEALTH, RNG())
    assert info.value.status == 503
    assert info.value.metadata == {"error_type": "provider_unavailable"}
    assert "(set one of: BARE_API_KEY, GOOGLE_VERTEX_API_KEY)" in info.value.message


def test_a_hard_filter_names_itself_before_credentials_are_considered() -> None:
    cat = catalog(model("acme/model", cand("bare", zdr=False)), configured=frozenset())
    with pytest.raises(RoutingError) as info:
        route(RouteRequest(models=("acme/model",), prefs=parse_provider_prefs({"zdr": True})), cat, NO_HEALTH, RNG())
    assert info.value.status == 404
    assert info.value.metadata == {"error_type": "not_found", "excluded_by": ["data_policy:zdr"]}


def test_auto_picks_only_models_someone_holds_a_key_for() -> None:
    cat = catalog(*AUTO_CAT.models.values(), configured=frozenset({"midco", "dearco"}))
    attempts = route(RouteRequest(models=("openrouter/auto",)), cat, NO_HEALTH, RNG()).attempts
    assert [a.model_slug for a in attempts] == ["acme/mid", "acme/dear"]
