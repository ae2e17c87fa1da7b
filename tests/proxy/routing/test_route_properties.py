"""Property tests: whatever the catalog, preferences and health, a plan obeys every hard rule."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from proxy.health import EndpointHealth, HealthView
from proxy.routing import RouteRequest, matches, route
from proxy.routing.prefs import ProviderPrefs, RoutingError, parse_provider_prefs
from tests.proxy.routing.support import cand, catalog, model

PROVIDERS = ("openai", "deepinfra", "together", "fireworks")
SUFFIXES = ("", "/turbo", "/priority", "/eu")
PARAMS = ("tools", "tool_choice", "response_format", "seed", "temperature", "reasoning")
QUANTS = ("fp8", "bf16", "int4", None)
M = 1_000_000_000


@st.composite
def candidates(draw: st.DrawFn) -> list[Any]:
    count = draw(st.integers(min_value=0, max_value=7))  # 0: a model with no endpoints
    out = []
    for index in range(count):
        provider = draw(st.sampled_from(PROVIDERS))
        suffix = draw(st.sampled_from(SUFFIXES))
        out.append(
            cand(
                provider,
                tag=provider + suffix,
                endpoint_id=index + 1,
                prompt=draw(st.integers(0, 20)) * M // 4,
                completion=draw(st.integers(0, 20)) * M // 4,
                request=draw(st.sampled_from((0, 0, 1_000_000))),
                context=draw(st.sampled_from((4_000, 8_192, 32_000, 128_000))),
                max_completion=draw(st.sampled_from((None, 1_000, 16_000))),
                params=frozenset(draw(st.sets(st.sampled_from(PARAMS)))),
                retains=draw(st.booleans()),
                trains=draw(st.booleans()),
                zdr=draw(st.booleans()),
                quantization=draw(st.sampled_from(QUANTS)),
                variant=draw(st.sampled_from(("standard", "standard", "free"))),
            )
        )
    return out


names = st.lists(st.sampled_from([*PROVIDERS, "openai/priority", "deepinfra/turbo", "DeepInfra", "azure"]), max_size=3)


@st.composite
def raw_prefs(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for key, strategy in (
        ("order", names),
        ("only", names),
        ("ignore", names),
        ("allow_fallbacks", st.booleans()),
        ("require_parameters", st.booleans()),
        ("data_collection", st.sampled_from(("allow", "deny"))),
        ("zdr", st.booleans()),
        ("quantizations", st.lists(st.sampled_from(("fp8", "bf16", "int4", "unknown")), max_size=2)),
        ("sort", st.sampled_from(("price", "throughput", "latency", {"by": "price", "partition": "none"}))),
        ("max_price", st.fixed_dictionaries({}, optional={"prompt": st.integers(0, 5), "request": st.just(0)})),
    ):
        if draw(st.integers(0, 3)) == 0:  # each preference in a quarter of the cases: plans, not just 404s
            raw[key] = draw(strategy)
    return raw


healths = st.dictionaries(
    st.integers(1, 7),
    st.builds(
        EndpointHealth,
        recent_outage=st.booleans(),
        circuit_open=st.sampled_from((False, False, False, True)),
        half_open_probe=st.booleans(),
        throughput_p50=st.none() | st.floats(1, 500),
        ttft_p50_ms=st.none() | st.floats(10, 5_000),
    ),
)


def _fits_every_hard_filter(c: Any, prefs: ProviderPrefs, req: RouteRequest, compress_to: int | None) -> None:
    if prefs.only is not None:
        assert any(matches(e, c) for e in prefs.only)
    assert not any(matches(e, c, include_tiers=True) for e in prefs.ignore or ())
    if prefs.data_collection == "deny":
        assert not c.retains_prompts and not c.trains_on_prompts
    if prefs.zdr:
        assert c.zdr
    if prefs.quantizations is not None:
        assert (c.quantization or "unknown") in prefs.quantizations
    mp = prefs.max_price
    assert mp.prompt is None or c.price.prompt <= mp.prompt
    assert mp.request is None or c.price.request <= mp.request
    for param in ("tools", "tool_choice"):
        if param in req.params:
            assert param in c.supported_parameters
    if prefs.require_parameters:
        assert req.params <= c.supported_parameters
    if req.max_tokens is not None and c.max_completion_tokens is not None:
        assert req.max_tokens <= c.max_completion_tokens
    needed = req.prompt_tokens + (req.max_tokens or 0)
    if compress_to is None:
        assert needed <= c.context_length
    else:
        assert req.middle_out is not False
        assert 0 < compress_to <= c.context_length - (req.max_tokens or 0)
    if c.tag.endswith("/priority"):  # service tiers only when named by full tag
        assert any(e.lower() == c.tag for e in (*(prefs.order or ()), *(prefs.only or ())))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cands=candidates(),
    raw=raw_prefs(),
    params=st.frozensets(st.sampled_from(PARAMS), max_size=2),
    prompt_tokens=st.integers(0, 40_000) | st.integers(0, 2_000),
    max_tokens=st.none() | st.integers(1, 20_000),
    middle_out=st.none() | st.booleans(),
    byok=st.frozensets(st.sampled_from(PROVIDERS)),
    health=healths,
    seed=st.integers(0, 2**32),
)
def test_it_only_ever_plans_endpoints_that_satisfy_every_rule(
    cands: list[Any],
    raw: dict[str, Any],
    params: frozenset[str],
    prompt_tokens: int,
    max_tokens: int | None,
    middle_out: bool | None,
    byok: frozenset[str],
    health: dict[int, EndpointHealth],
    seed: int,
) -> None:
    try:
        prefs = parse_provider_prefs(raw)
    except RoutingError as error:
        assert error.status == 400
        return
    req = RouteRequest(
        models=("acme/model",),
        prefs=prefs,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        params=params,
        byok_providers=byok,
        middle_out=middle_out,
    )
    view = HealthView(health)
    try:
        plan = route(req, catalog(model("acme/model", *cands)), view, random.Random(seed))
    except RoutingError as error:
        event(f"refused {error.status}")
        assert error.status in (400, 404, 503)
        assert error.message
        return
    event("planned")
    attempts = plan.attempts
    assert attempts, "a plan is never empty: no candidates is an error"
    ids = [a.candidate.endpoint_id for a in attempts]
    assert len(ids) == len(set(ids)), "no endpoint twice"
    for a in attempts:
        _fits_every_hard_filter(a.candidate, prefs, req, a.compress_to)
        h = view.get(a.candidate.endpoint_id)
        assert not h.circuit_open or h.half_open_probe, "open circuits are skipped"
        assert a.candidate.is_byok == (a.candidate.provider_slug in byok)
    flags = [a.candidate.is_byok for a in attempts]
    assert flags == sorted(flags, reverse=True), "BYOK endpoints come first"
    if prefs.order is not None and not prefs.allow_fallbacks:
        assert all(any(matches(e, a.candidate) for e in prefs.order) for a in attempts)
    if prefs.order is None and not prefs.allow_fallbacks:
        assert len(attempts) == 1
    if prefs.order:
        # Among endpoints of the same BYOK class, those named by order come first, in order.
        for group in (True, False):
            ranks = [_order_rank(prefs.order, a.candidate) for a in attempts if a.candidate.is_byok is group]
            assert ranks == sorted(ranks)


def _order_rank(order: tuple[str, ...], c: Any) -> int:
    return next((i for i, e in enumerate(order) if matches(e, c)), len(order))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(
    raw=st.dictionaries(
        st.sampled_from(
            ["order", "only", "ignore", "sort", "max_price", "zdr", "quantizations", "x", "allow_fallbacks"]
        ),
        json_values,
        max_size=4,
    )
    | json_values
)
def test_it_never_fails_on_garbage_prefs_with_anything_but_a_400(raw: object) -> None:
    try:
        parse_provider_prefs(raw)
    except RoutingError as error:
        assert error.status == 400
