"""Service tiers priced right (contract 10.4): the upstream is asked for the tier of the endpoint we
price, and the generation is billed at (and records) the tier the provider says it served."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from billing.pricing import PriceCard, Usage, cost_nanos
from proxy.models import Endpoint, Model, Provider
from tests.e2e.support import (
    COMPLETION_NANOS_PER_MTOK,
    PROMPT_NANOS_PER_MTOK,
    SUPPORTED,
    World,
    assert_charged,
    generation,
)
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client, stream

MULTIPLIER = {"mock-openai": 1.0, "mock-openai/priority": 2.0, "mock-openai/flex": 0.5}


def tiered_model(world: World, slug: str, endpoints: dict[str, str]) -> None:
    """One model at mock-openai with an endpoint per tag (tag -> upstream model), priced by MULTIPLIER."""
    model = Model.objects.create(
        slug=slug,
        canonical_slug=slug,
        name=slug,
        context_length=8192,
        supported_parameters=SUPPORTED,
        input_modalities=["text"],
        output_modalities=["text"],
    )
    provider: Provider = world.providers["mock-openai"]
    for tag, upstream in endpoints.items():
        Endpoint.objects.create(
            model=model,
            provider=provider,
            tag=tag,
            upstream_model=upstream,
            context_length=8192,
            max_completion_tokens=1024,
            prompt_nanos_per_mtok=int(PROMPT_NANOS_PER_MTOK * MULTIPLIER[tag]),
            completion_nanos_per_mtok=int(COMPLETION_NANOS_PER_MTOK * MULTIPLIER[tag]),
            supported_parameters=SUPPORTED,
        )


def cost_at(tag: str) -> int:
    m = MULTIPLIER[tag]
    price = PriceCard(prompt=int(PROMPT_NANOS_PER_MTOK * m), completion=int(COMPLETION_NANOS_PER_MTOK * m))
    return cost_nanos(Usage(prompt_tokens=PROMPT_TOKENS, completion_tokens=len(DEFAULT_PIECES)), price)


def post(world: World, body: dict[str, Any]) -> httpx.Response:
    async def main() -> httpx.Response:
        async with asgi_client(world.key.key) as client:
            return await client.post(PATH, json={"messages": MESSAGES, **body})

    return asyncio.run(main())


def sent_tiers(mock: MockProvider) -> list[tuple[str, object]]:
    return [(r.model, r.body.get("service_tier")) for r in mock.requests]


ALL_TIERS = {"mock-openai": "mock-ok", "mock-openai/priority": "mock-ok", "mock-openai/flex": "mock-ok"}


def test_priority_is_served_by_the_priority_endpoint_and_charged_its_price(
    live: World, mock_provider: MockProvider
) -> None:
    tiered_model(live, "tiers/all", ALL_TIERS)
    res = post(live, {"model": "tiers/all", "service_tier": "priority"})
    assert res.status_code == 200, res.text
    assert sent_tiers(mock_provider) == [("mock-ok", "priority")]
    gen = generation(res.json()["id"])
    assert gen.endpoint_tag == "mock-openai/priority"
    assert gen.provider_responses[-1]["routed_service_tier"] == "priority"
    assert cost_at("mock-openai/priority") == 2 * cost_at("mock-openai")
    assert_charged(live, gen, cost_at("mock-openai/priority"))


def test_a_priority_stream_is_charged_the_priority_price(live: World, mock_provider: MockProvider) -> None:
    tiered_model(live, "tiers/all", ALL_TIERS)

    async def main() -> str:
        async with asgi_client(live.key.key) as client:
            res, events = await stream(client, {"model": "tiers/all", "messages": MESSAGES, "service_tier": "fast"})
            assert res.status_code == 200, res.text
            return str(events.data()[0]["id"])

    gen = generation(asyncio.run(main()))
    assert sent_tiers(mock_provider) == [("mock-ok", "fast")]
    assert gen.provider_responses[-1]["routed_service_tier"] == "fast"
    assert_charged(live, gen, cost_at("mock-openai/priority"))


def test_priority_falling_over_to_standard_is_not_sent_as_priority_and_charged_standard(
    live: World, mock_provider: MockProvider
) -> None:
    tiered_model(live, "tiers/priority-down", {"mock-openai": "mock-ok", "mock-openai/priority": "mock-503"})
    res = post(live, {"model": "tiers/priority-down", "service_tier": "priority"})
    assert res.status_code == 200, res.text
    # The priority endpoint first, then the standard one without the priority tier.
    assert sent_tiers(mock_provider) == [("mock-503", "priority"), ("mock-ok", None)]
    gen = generation(res.json()["id"])
    assert gen.endpoint_tag == "mock-openai"
    assert [r["status"] for r in gen.provider_responses] == [503, 200]
    assert "routed_service_tier" not in gen.provider_responses[-1]  # the upstream reported no tier
    assert_charged(live, gen, cost_at("mock-openai"))


def test_flex_goes_only_to_the_flex_endpoint_at_the_flex_price(live: World, mock_provider: MockProvider) -> None:
    tiered_model(live, "tiers/all", ALL_TIERS)
    res = post(live, {"model": "tiers/all", "service_tier": "flex"})
    assert res.status_code == 200, res.text
    assert sent_tiers(mock_provider) == [("mock-ok", "flex")]
    gen = generation(res.json()["id"])
    assert gen.endpoint_tag == "mock-openai/flex"
    assert gen.provider_responses[-1]["routed_service_tier"] == "flex"
    assert_charged(live, gen, cost_at("mock-openai/flex"))


def test_flex_is_not_served_when_the_flex_endpoint_is_down(live: World, mock_provider: MockProvider) -> None:
    tiered_model(live, "tiers/flex-down", {"mock-openai": "mock-ok", "mock-openai/flex": "mock-503"})
    res = post(live, {"model": "tiers/flex-down", "service_tier": "flex"})
    assert res.status_code == 502, res.text
    assert sent_tiers(mock_provider) == [("mock-503", "flex")]  # never the standard endpoint


def test_a_tier_endpoint_is_asked_for_its_tier_without_a_service_tier(live: World, mock_provider: MockProvider) -> None:
    tiered_model(live, "tiers/all", ALL_TIERS)
    res = post(live, {"model": "tiers/all", "provider": {"only": ["mock-openai/priority"]}})
    assert res.status_code == 200, res.text
    assert sent_tiers(mock_provider) == [("mock-ok", "priority")]
    assert_charged(live, generation(res.json()["id"]), cost_at("mock-openai/priority"))


def test_billing_follows_the_tier_the_provider_reports(live: World, mock_provider: MockProvider) -> None:
    # The standard endpoint's upstream says it served priority anyway: we bill the priority sibling.
    tiered_model(live, "tiers/misreport", {"mock-openai": "mock-ok+served-priority", "mock-openai/priority": "mock-ok"})
    res = post(live, {"model": "tiers/misreport"})
    assert res.status_code == 200, res.text
    assert sent_tiers(mock_provider) == [("mock-ok+served-priority", None)]
    gen = generation(res.json()["id"])
    assert gen.endpoint_tag == "mock-openai"
    assert gen.provider_responses[-1]["routed_service_tier"] == "priority"
    assert_charged(live, gen, cost_at("mock-openai/priority"))


def test_flex_without_any_flex_endpoint_routes_normally_at_the_standard_price(
    live: World, mock_provider: MockProvider
) -> None:
    tiered_model(live, "tiers/plain", {"mock-openai": "mock-ok"})
    res = post(live, {"model": "tiers/plain", "service_tier": "flex"})
    assert res.status_code == 200, res.text
    assert sent_tiers(mock_provider) == [("mock-ok", None)]  # not asked for a flex tier we do not price
    gen = generation(res.json()["id"])
    assert gen.endpoint_tag == "mock-openai"
    assert_charged(live, gen, cost_at("mock-openai"))
