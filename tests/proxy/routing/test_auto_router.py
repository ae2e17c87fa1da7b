"""The auto router's policy (proxy/routing/auto.py, docs/routing.md "The auto router")."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.catalog.snapshot import CatalogSnapshot, ModelInfo
from proxy.health import EndpointHealth, HealthView
from proxy.routing import RoutePlan, RouteRequest, route
from proxy.routing.auto import code_in_prompt
from proxy.routing.prefs import RoutingError
from tests.proxy.routing.support import ALL_PARAMS, USD_PER_MTOK, cand, catalog, model
from tests.proxy.routing.test_real_catalog import real_catalog  # noqa: F401  (fixture)

AUTO = ("openrouter/auto",)


def rated(info: ModelInfo, **quality: float) -> ModelInfo:
    return replace(info, quality=quality)


# A small catalog where each signal has one right answer: equal prices, so quality decides, and
# mediocre filler models so that percentiles mean something.
DEAR: dict[str, Any] = {"prompt": 3 * USD_PER_MTOK, "completion": 15 * USD_PER_MTOK}
FILLER = [
    rated(
        model(f"lab/filler-{i}", cand(f"f{i}", endpoint_id=120 + i, **DEAR)),
        intelligence=20 + 5 * i,
        coding=20 + 5 * i,
        agentic=20 + 5 * i,
        arena_rank=20 + 10 * i,
    )
    for i in range(6)
]
GENERAL = rated(
    model("lab/general", cand("g", prompt=3 * USD_PER_MTOK, completion=15 * USD_PER_MTOK, endpoint_id=101)),
    intelligence=70,
    coding=40,
    agentic=30,
    arena_rank=1,
)
CODER = rated(
    model("lab/coder", cand("c", prompt=3 * USD_PER_MTOK, completion=15 * USD_PER_MTOK, endpoint_id=102)),
    intelligence=55,
    coding=80,
    agentic=40,
    arena_rank=8,
    arena_coding_rank=1,
)
AGENT = rated(
    model("lab/agent", cand("a", prompt=3 * USD_PER_MTOK, completion=15 * USD_PER_MTOK, endpoint_id=103)),
    intelligence=55,
    coding=45,
    agentic=80,
    arena_rank=9,
)
CHEAP_UNRATED = model("lab/cheap", cand("x", prompt=1, completion=1, endpoint_id=104))
NO_TOOLS = rated(
    model("lab/no-tools", cand("n", params=ALL_PARAMS - {"tools", "tool_choice"}, endpoint_id=105, **DEAR)),
    intelligence=90,
    coding=90,
    agentic=90,
    arena_rank=1,
)
NO_REASONING = rated(
    model("lab/plain", cand("p", params=ALL_PARAMS - {"reasoning"}, endpoint_id=106, **DEAR)),
    intelligence=88,
    arena_rank=1,
)
IMAGE_OUT = rated(
    model("lab/painter", cand("i", prompt=1, completion=1, endpoint_id=107), output_modalities=("image", "text")),
    intelligence=99,
    arena_rank=1,
)
SPEAKER = rated(
    model("lab/lyria", cand("s", prompt=0, completion=0, endpoint_id=108), output_modalities=("audio",)),
    intelligence=99,
)
CAT = catalog(GENERAL, CODER, AGENT, CHEAP_UNRATED, NO_TOOLS, NO_REASONING, IMAGE_OUT, SPEAKER, *FILLER)


def first(cat: CatalogSnapshot, health: HealthView | None = None, **kw: Any) -> str:
    return plan(cat, health, **kw).attempts[0].model_slug


def plan(cat: CatalogSnapshot, health: HealthView | None = None, **kw: Any) -> RoutePlan:
    req = RouteRequest(models=AUTO, **kw)
    return route(req, cat, health or HealthView(), random.Random(1))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ({"prompt_tokens": 20}, "lab/no-tools"),  # best published figures, text out, answers plain chat
        ({"prompt_tokens": 20, "params": frozenset({"tools"})}, "lab/agent"),  # no-tools can't; agentic wins
        ({"prompt_tokens": 20, "params": frozenset({"reasoning"})}, "lab/no-tools"),  # plain lacks reasoning
        ({"prompt_tokens": 20, "code_in_prompt": True, "auto_excluded": ("lab/no-tools",)}, "lab/coder"),
        ({"prompt_tokens": 20, "auto_excluded": ("lab/no-tools",)}, "lab/plain"),
        ({"prompt_tokens": 20, "auto_allowed": ("lab/c*",)}, "lab/coder"),  # coder beats the unrated cheap one
        ({"prompt_tokens": 20, "auto_allowed": ("lab/cheap",)}, "lab/cheap"),
        ({"prompt_tokens": 20, "output_modalities": frozenset({"image", "text"})}, "lab/painter"),
    ],
)
def test_it_chooses_by_the_request_shape(shape: dict[str, Any], expected: str) -> None:
    assert first(CAT, **shape) == expected


def test_it_never_answers_chat_with_an_audio_or_image_model() -> None:
    kws: list[dict[str, Any]] = [{}, {"params": frozenset({"tools"})}, {"code_in_prompt": True}]
    for kw in kws:
        slugs = [a.model_slug for a in plan(CAT, prompt_tokens=5, **kw).attempts]
        assert "lab/lyria" not in slugs
        assert "lab/painter" not in slugs


def test_general_chat_prefers_the_general_model_over_specialists() -> None:
    cat = catalog(GENERAL, CODER, AGENT, CHEAP_UNRATED, *FILLER)
    assert first(cat, prompt_tokens=20) == "lab/general"
    assert first(cat, prompt_tokens=20, code_in_prompt=True) == "lab/coder"
    assert first(cat, prompt_tokens=20, params=frozenset({"tools"})) == "lab/agent"


def test_it_keeps_the_configured_number_of_models() -> None:
    with override_settings(AUTO_ROUTER_FALLBACKS=2):
        p = plan(catalog(GENERAL, CODER, AGENT, CHEAP_UNRATED, *FILLER), prompt_tokens=20)
    assert len({a.model_slug for a in p.attempts}) == 2
    assert p.router == "openrouter/auto"


def test_measured_latency_decides_between_equals() -> None:
    twin_a = rated(model("lab/twin-a", cand("ta", endpoint_id=201)), intelligence=60, arena_rank=5)
    twin_b = rated(model("lab/twin-b", cand("tb", endpoint_id=202)), intelligence=60, arena_rank=5)
    cat = catalog(twin_a, twin_b)
    assert first(cat, prompt_tokens=20) == "lab/twin-a"  # a tie: the lexically first id
    slow_a = HealthView({201: EndpointHealth(ttft_p50_ms=4_000), 202: EndpointHealth(ttft_p50_ms=300)})
    assert first(cat, slow_a, prompt_tokens=20) == "lab/twin-b"


def test_bad_tool_calls_cost_a_model_requests_with_tools_only() -> None:
    twin_a = rated(model("lab/twin-a", cand("ta", endpoint_id=211)), agentic=60, arena_rank=5)
    twin_b = rated(model("lab/twin-b", cand("tb", endpoint_id=212)), agentic=60, arena_rank=5)
    broken_a = HealthView({211: EndpointHealth(tool_error_rate=0.6)})
    cat = catalog(twin_a, twin_b)
    assert first(cat, broken_a, prompt_tokens=20, params=frozenset({"tools"})) == "lab/twin-b"
    assert first(cat, broken_a, prompt_tokens=20) == "lab/twin-a"


def test_price_breaks_ties_in_quality_and_long_prompts_weigh_it_more() -> None:
    dear = rated(model("lab/dear", cand("d", prompt=15 * USD_PER_MTOK, endpoint_id=221)), intelligence=70)
    thrifty = rated(model("lab/thrifty", cand("t", prompt=USD_PER_MTOK // 10, endpoint_id=222)), intelligence=62)
    filler = [rated(model(f"lab/f{i}", cand(f"f{i}", endpoint_id=230 + i)), intelligence=10 + i) for i in range(4)]
    cat = catalog(dear, thrifty, *filler)
    assert first(cat, prompt_tokens=20, max_tokens=100) == "lab/dear"
    assert first(cat, prompt_tokens=60_000, max_tokens=100) == "lab/thrifty"


def test_it_is_deterministic() -> None:
    runs = {tuple(a.candidate.endpoint_id for a in plan(CAT, prompt_tokens=50).attempts[:1]) for _ in range(5)}
    assert len(runs) == 1


def test_it_answers_404_when_nothing_can_answer() -> None:
    with pytest.raises(RoutingError) as info:
        plan(catalog(SPEAKER, IMAGE_OUT), prompt_tokens=5)
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi, how are you?", False),
        ("Why does this fail?\n```python\nprint(1)\n```", True),
        ("def f(x):\n    return x\nimport os\n", True),
        ("const a = 1;\nlet b = {\n", True),
        ("Write me a poem about the sea; make it rhyme.", False),
    ],
)
def test_it_sees_code_in_the_prompt(text: str, expected: bool) -> None:
    assert code_in_prompt([{"role": "user", "content": [{"type": "text", "text": text}]}]) is expected


# --- over the shipped catalog -------------------------------------------------------------------------

REAL_TABLE: list[tuple[dict[str, Any], str]] = [
    ({"prompt_tokens": 5}, "google/gemini-3.7-flash"),
    ({"prompt_tokens": 500, "params": frozenset({"tools"})}, "qwen/qwen3.8-max"),
    ({"prompt_tokens": 500, "auto_allowed": ("anthropic/*",)}, "anthropic/claude-opus-5"),
    ({"prompt_tokens": 50, "output_modalities": frozenset({"image", "text"})}, "google/gemini-3.1-flash-lite-image"),
]


def test_it_chooses_from_the_shipped_catalog(real_catalog: CatalogSnapshot) -> None:  # noqa: F811
    for shape, expected in REAL_TABLE:
        assert first(real_catalog, **shape) == expected, shape
    hi = plan(real_catalog, prompt_tokens=5)
    assert all(real_catalog.models[a.model_slug].quality for a in hi.attempts)  # rated models only


def test_never_a_model_that_cannot_answer(real_catalog: CatalogSnapshot) -> None:  # noqa: F811
    shapes = st.fixed_dictionaries(
        {
            "prompt_tokens": st.integers(1, 400_000),
            "max_tokens": st.none() | st.integers(1, 64_000),
            "params": st.frozensets(
                st.sampled_from(["tools", "tool_choice", "reasoning", "response_format", "structured_outputs"])
            ),
            "input_modalities": st.frozensets(st.sampled_from(["image", "audio", "file"])),
            "code_in_prompt": st.booleans(),
        }
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(shape=shapes)
    def check(shape: dict[str, Any]) -> None:
        req = RouteRequest(models=AUTO, **shape)
        try:
            p = route(req, real_catalog, HealthView(), random.Random(0))
        except RoutingError as error:
            assert error.status == 404
            return
        for attempt in p.attempts:
            info = real_catalog.models[attempt.model_slug]
            c = attempt.candidate
            assert set(info.output_modalities) == {"text"}
            assert req.input_modalities - {"file"} <= set(info.input_modalities)
            assert attempt.compress_to is None
            assert c.context_length <= 0 or req.prompt_tokens + (req.max_tokens or 0) <= c.context_length
            if "tools" in req.params:
                assert "tools" in c.supported_parameters
            if "reasoning" in req.params:
                assert c.supported_parameters & {"reasoning", "include_reasoning"}
            if "structured_outputs" in req.params:
                assert "structured_outputs" in c.supported_parameters
            assert ":" not in attempt.model_slug and not attempt.model_slug.startswith("openrouter/")

    check()
