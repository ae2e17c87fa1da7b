"""Tool-call quality through the gateway: the mock provider scripts tool calls that fail their
schema on one endpoint; health measures it; `:exacto`, requests with tools and `/endpoints` see it."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from django.test import Client
from pytest_django.fixtures import Settings

from proxy.health import get_health_store
from proxy.models import Endpoint, Model
from tests.e2e.support import PROVIDER_NAMES, World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import PATH, asgi_client, stream
from tests.proxy.routing.test_tool_quality import WEATHER


def _tool_model(world: World) -> tuple[Endpoint, Endpoint]:
    model = Model.objects.create(
        slug="tq/weather", canonical_slug="tq/weather", name="TQ: Weather", input_modalities=["text"],
        output_modalities=["text"], supported_parameters=["tools", "tool_choice", "max_tokens"],
    )  # fmt: skip

    def endpoint(provider: str, upstream: str, prompt: int) -> Endpoint:
        return Endpoint.objects.create(
            model=model, provider=world.providers[provider], tag=provider, upstream_model=upstream,
            context_length=8192, max_completion_tokens=1024, prompt_nanos_per_mtok=prompt,
            completion_nanos_per_mtok=prompt, supported_parameters=["tools", "tool_choice", "max_tokens"],
        )  # fmt: skip

    return endpoint("mock-openai", "mock-tools+bad-tool-args", 100), endpoint("mock-anthropic", "mock-tools", 900)


def test_the_gateway_measures_tool_calls_and_routes_around_bad_ones(
    live: World, mock_provider: MockProvider, settings: Settings, client: Client
) -> None:
    bad, good = _tool_model(live)
    ask = {"model": "tq/weather", "messages": [{"role": "user", "content": "Weather?"}], "tools": [WEATHER]}

    async def main() -> list[httpx.Response]:
        async with asgi_client(live.key.key) as gateway:
            for n in range(6):  # each endpoint answers tool calls, half of them streamed
                for slug in ("mock-openai", "mock-anthropic"):
                    body = {**ask, "provider": {"only": [slug]}}
                    if n % 2:
                        response, _ = await stream(gateway, body)
                    else:
                        response = await gateway.post(PATH, json=body)
                    assert response.status_code == 200, response.text
            view = await get_health_store().view([bad.pk, good.pk])
            assert view.get(bad.pk).tool_error_rate == 1.0
            assert view.get(good.pk).tool_error_rate == 0.0
            priced = {**ask, "provider": {"sort": "price"}}
            return [
                await gateway.post(PATH, json=priced),  # tools: the cheap endpoint's calls are broken
                await gateway.post(PATH, json={**ask, "model": "tq/weather:exacto"}),
                await gateway.post(PATH, json={**priced, "tools": None, "messages": ask["messages"]}),
            ]

    with_tools, exacto, without_tools = asyncio.run(main())
    listing = client.get("/api/v1/models/tq/weather/endpoints")
    assert listing.status_code == 200
    listed = listing.json()["data"]["endpoints"]
    by_tag = {e["tag"]: e for e in listed}
    assert by_tag["mock-openai"]["tool_call_error_rate_last_30m"] == 1.0
    assert by_tag["mock-anthropic"]["tool_call_error_rate_last_30m"] == 0.0
    assert by_tag["mock-openai"]["stats_source"]["tool_call_error_rate_last_30m"] == "measured"
    assert by_tag["mock-openai"]["stats_source"]["uptime_last_30m"] == "measured"
    assert with_tools.json()["provider"] == PROVIDER_NAMES["mock-anthropic"]
    assert exacto.json()["provider"] == PROVIDER_NAMES["mock-anthropic"]
    assert exacto.json()["model"] == "tq/weather"
    assert without_tools.json()["provider"] == PROVIDER_NAMES["mock-openai"]  # price decides without tools
    arguments = orjson.loads(with_tools.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert isinstance(arguments["location"], str)
