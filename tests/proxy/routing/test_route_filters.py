"""Hard filters (contract 10.1): each removes endpoints, and the 404 names the one that removed the last."""

from __future__ import annotations

import random

import pytest

from proxy.health import HealthView
from proxy.routing import RoutePlan, RouteRequest, route
from proxy.routing.prefs import RoutingError, parse_provider_prefs
from tests.proxy.routing.support import USD_PER_MTOK, cand, catalog, model

NO_HEALTH = HealthView()


def plan(cat, **kw) -> RoutePlan:  # type: ignore[no-untyped-def]
    provider = kw.pop("provider", None)
    req = RouteRequest(models=kw.pop("models", ("acme/model",)), prefs=parse_provider_prefs(provider), **kw)
    return route(req, cat, NO_HEALTH, random.Random(1))


def tags(p: RoutePlan) -> list[str]:
    return [a.candidate.tag for a in p.attempts]


def refused(cat, **kw) -> RoutingError:  # type: ignore[no-untyped-def]
    with pytest.raises(RoutingError) as info:
        plan(cat, **kw)
    return info.value


CAT = catalog(
    model(
        "acme/model",
        cand("openai", name="OpenAI", retains=True, quantization=None),
        cand("deepinfra", name="DeepInfra", tag="deepinfra/turbo", quantization="fp8", trains=True, retains=True),
        cand("deepinfra", name="DeepInfra", quantization="bf16"),
        cand("together", name="Together", zdr=True, prompt=3 * USD_PER_MTOK, context=8_000, max_completion=1_000),
        cand("fireworks", name="Fireworks", params=frozenset({"temperature"}), prompt=2 * USD_PER_MTOK),
        cand("openai", name="OpenAI", tag="openai/priority", variant="priority"),
    )
)


def test_it_returns_every_standard_endpoint_once_by_default() -> None:
    assert sorted(tags(plan(CAT))) == ["deepinfra", "deepinfra/turbo", "fireworks", "openai", "together"]


def test_it_keeps_only_the_providers_in_only_by_slug_tag_or_display_name() -> None:
    assert sorted(tags(plan(CAT, provider={"only": ["deepinfra"]}))) == ["deepinfra", "deepinfra/turbo"]
    assert tags(plan(CAT, provider={"only": ["deepinfra/turbo"]})) == ["deepinfra/turbo"]
    assert sorted(tags(plan(CAT, provider={"only": ["Together", "FIREWORKS"]}))) == ["fireworks", "together"]


def test_it_drops_ignored_providers_including_their_service_tiers() -> None:
    assert "openai" not in tags(plan(CAT, provider={"ignore": ["openai"]}))
    error = refused(CAT, provider={"ignore": ["openai"], "only": ["openai/priority"]})
    assert "provider.ignore" in error.message


def test_it_includes_a_service_tier_endpoint_only_when_named_by_its_full_tag() -> None:
    assert tags(plan(CAT, provider={"only": ["openai"]})) == ["openai"]
    assert tags(plan(CAT, provider={"only": ["openai/priority"]})) == ["openai/priority"]


def test_it_filters_by_data_policy() -> None:
    assert sorted(tags(plan(CAT, provider={"data_collection": "deny"}))) == ["deepinfra", "fireworks", "together"]
    assert tags(plan(CAT, provider={"zdr": True})) == ["together"]


def test_it_filters_by_quantization_with_unknown_for_missing_values() -> None:
    assert tags(plan(CAT, provider={"quantizations": ["fp8"]})) == ["deepinfra/turbo"]
    assert tags(plan(CAT, provider={"quantizations": ["unknown"]})) == ["openai"]


def test_it_filters_by_max_price_as_a_hard_limit() -> None:
    p = plan(CAT, provider={"max_price": {"prompt": 2}})
    assert "together" not in tags(p)
    assert "fireworks" in tags(p)  # exactly at the limit is allowed


def test_it_filters_by_context_length_and_max_tokens() -> None:
    assert "together" not in tags(plan(CAT, prompt_tokens=7_500, max_tokens=600, middle_out=False))
    assert "together" not in tags(plan(CAT, prompt_tokens=10, max_tokens=2_000))
    assert "together" in tags(plan(CAT, prompt_tokens=7_000, max_tokens=900))


def test_it_requires_tool_support_even_without_require_parameters() -> None:
    assert "fireworks" not in tags(plan(CAT, params=frozenset({"tools"})))


def test_it_requires_every_parameter_when_require_parameters_is_set() -> None:
    p = plan(CAT, params=frozenset({"seed"}), provider={"require_parameters": True})
    assert "fireworks" not in tags(p)
    assert "fireworks" in tags(plan(CAT, params=frozenset({"seed"})))


def test_it_prefers_structured_output_endpoints_softly() -> None:
    assert "fireworks" not in tags(plan(CAT, params=frozenset({"response_format"})))
    only_weak = catalog(model("acme/model", cand("fireworks", params=frozenset({"temperature"}))))
    assert tags(plan(only_weak, params=frozenset({"response_format"}))) == ["fireworks"]


@pytest.mark.parametrize(
    ("kw", "status", "message", "excluded_by"),
    [
        ({"provider": {"only": ["azure"]}}, 404, "among the providers in provider.only", "allowed_providers"),
        (
            {"provider": {"only": ["openai"], "ignore": ["OpenAI", "x"]}},
            400,
            "provider.only and provider.ignore",
            None,
        ),
        (
            {"provider": {"data_collection": "deny", "zdr": True, "quantizations": ["fp8"]}},
            404,
            "with the requested quantizations",
            "quantization",
        ),
        (
            {"provider": {"data_collection": "deny", "only": ["openai"]}},
            404,
            "data_collection: deny",
            "data_policy:training",
        ),
        ({"provider": {"zdr": True, "ignore": ["together"]}}, 404, "zdr: true", "data_policy:zdr"),
        ({"provider": {"max_price": {"prompt": 0.5}}}, 404, "within your max_price", "max_price"),
        (
            {"provider": {"only": ["fireworks"]}, "params": frozenset({"tools"})},
            404,
            "support tool use",
            "require_parameters",
        ),
        (
            {"provider": {"only": ["fireworks"], "require_parameters": True}, "params": frozenset({"seed"})},
            404,
            "can handle the requested parameters",
            "require_parameters",
        ),
        ({"prompt_tokens": 500_000, "middle_out": False}, 400, "maximum context length is 128000", "context_length"),
        ({"max_tokens": 500_000}, 400, "maximum context length", "context_length"),
        (
            {"provider": {"order": ["azure"], "allow_fallbacks": False}},
            404,
            "provider.order (allow_fallbacks is false)",
            "allowed_providers",
        ),
    ],
)
def test_it_explains_which_filter_left_nothing(
    kw: dict[str, object], status: int, message: str, excluded_by: str | None
) -> None:
    error = refused(CAT, **kw)
    assert error.status == status
    assert message in error.message
    if excluded_by:
        assert error.metadata is not None
        assert error.metadata["excluded_by"] == [excluded_by]


def test_it_rejects_an_unknown_model_with_a_400() -> None:
    error = refused(CAT, models=("acme/nope",))
    assert error.status == 400
    assert error.message == "acme/nope is not a valid model ID"
    error = refused(CAT, models=("acme/model:bogus",))
    assert error.message == "acme/model:bogus is not a valid model ID"


def test_it_rejects_an_empty_model_list() -> None:
    assert refused(CAT, models=()).status == 400


def test_it_reports_a_model_without_endpoints_as_404() -> None:
    error = refused(catalog(model("acme/model")))
    assert error.status == 404
    assert error.message == "No endpoints found for acme/model"


def test_it_filters_models_by_input_modality() -> None:
    error = refused(CAT, input_modalities=frozenset({"image"}))
    assert error.status == 404
    assert "support image input" in error.message
    vision = catalog(model("acme/model", cand("openai"), input_modalities=("text", "image")))
    assert tags(plan(vision, input_modalities=frozenset({"image", "file"}))) == ["openai"]


def test_it_marks_byok_endpoints_and_puts_them_first() -> None:
    p = plan(CAT, byok_providers=frozenset({"fireworks"}))
    assert tags(p)[0] == "fireworks"
    assert p.attempts[0].candidate.is_byok is True
    assert not any(a.candidate.is_byok for a in p.attempts[1:])


def test_it_puts_byok_first_even_against_order() -> None:
    p = plan(CAT, byok_providers=frozenset({"together"}), provider={"order": ["openai", "fireworks"]})
    assert tags(p)[:3] == ["together", "openai", "fireworks"]
