"""Failover in process: one loop for both runners, failing over on 5xx/429/connect errors, recording health."""

from __future__ import annotations

import asyncio

import httpx

from proxy.health import endpoint_stats
from proxy.models import Endpoint
from tests.e2e.support import PROVIDER_NAMES, World, assert_charged, expected_cost, generation
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider
from tests.mockprovider.sse import SSEStream
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client, stream, streamed_text

PINNED = {"order": ["mock-openai", "mock-anthropic"]}  # the failing endpoint first


def endpoint(model: str, provider: str) -> Endpoint:
    return Endpoint.objects.get(model__slug=model, provider__slug=provider)


def uptime(e: Endpoint) -> float | None:
    value = endpoint_stats([e.pk])[e.pk]["uptime_last_5m"]
    return float(value) if value is not None else None


def test_a_5xx_fails_over_to_the_next_endpoint_and_both_are_recorded(live: World, mock_provider: MockProvider) -> None:
    async def main() -> httpx.Response:
        async with asgi_client(live.key.key) as client:
            return await client.post(PATH, json={"model": "failover/503", "messages": MESSAGES, "provider": PINNED})

    res = asyncio.run(main())
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["provider"] == res.headers["x-openrouter-provider"] == PROVIDER_NAMES["mock-anthropic"]
    assert body["choices"][0]["message"]["content"] == "".join(DEFAULT_PIECES)
    assert [(r.format, r.model) for r in mock_provider.requests] == [("openai", "mock-503"), ("anthropic", "mock-ok")]
    # Health: the failure and the success each land on their own endpoint.
    assert uptime(endpoint("failover/503", "mock-openai")) == 0.0
    assert uptime(endpoint("failover/503", "mock-anthropic")) == 100.0
    gen = generation(body["id"])
    assert [(a["provider_name"], a["status"]) for a in gen.provider_responses] == [
        (PROVIDER_NAMES["mock-openai"], 503),
        (PROVIDER_NAMES["mock-anthropic"], 200),
    ]
    assert_charged(live, gen, expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


def test_a_stream_fails_over_before_its_first_byte(live: World, mock_provider: MockProvider) -> None:
    async def main() -> tuple[httpx.Response, SSEStream]:
        async with asgi_client(live.key.key) as client:
            return await stream(client, {"model": "failover/refused", "messages": MESSAGES, "provider": PINNED_DOWN})

    res, events = asyncio.run(main())
    assert res.status_code == 200, res.text
    assert res.headers["x-openrouter-provider"] == PROVIDER_NAMES["mock-openai"]
    assert streamed_text(events) == "".join(DEFAULT_PIECES)
    assert events.done
    assert [(r.format, r.model, r.stream) for r in mock_provider.requests] == [("openai", "mock-ok", True)]
    assert uptime(endpoint("failover/refused", "mock-down")) == 0.0
    assert uptime(endpoint("failover/refused", "mock-openai")) == 100.0
    gen = generation(events.data()[0]["id"])
    assert [a["status"] for a in gen.provider_responses] == [0, 200]
    assert gen.streamed and not gen.cancelled
    assert_charged(live, gen, expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


PINNED_DOWN = {"order": ["mock-down", "mock-openai"]}


def test_a_stream_fails_over_on_429_and_reports_the_last_error_when_all_fail(
    live: World, mock_provider: MockProvider
) -> None:
    async def main() -> tuple[tuple[httpx.Response, SSEStream], tuple[httpx.Response, SSEStream]]:
        async with asgi_client(live.key.key) as client:
            ok = await stream(
                client, {"model": "failover/429", "messages": MESSAGES, "provider": {"order": ["mock-openai"]}}
            )
            failed = await stream(client, {"model": "failover/all-429", "messages": MESSAGES, "provider": PINNED})
            return ok, failed

    (ok, ok_events), (failed, _) = asyncio.run(main())
    assert ok.status_code == 200
    assert ok.headers["x-openrouter-provider"] == PROVIDER_NAMES["mock-gemini"]
    assert streamed_text(ok_events) == "".join(DEFAULT_PIECES)
    assert failed.status_code == 429
    assert failed.json()["error"]["metadata"]["provider_name"] == PROVIDER_NAMES["mock-anthropic"]
    assert [r.format for r in mock_provider.requests_for("mock-429")] == ["openai", "openai", "anthropic"]


def test_a_4xx_the_request_caused_does_not_fail_over(live: World, mock_provider: MockProvider) -> None:
    mock_provider.set_scenario("mock-503", status=400)

    async def main() -> httpx.Response:
        async with asgi_client(live.key.key) as client:
            return await client.post(PATH, json={"model": "failover/503", "messages": MESSAGES, "provider": PINNED})

    res = asyncio.run(main())
    assert res.status_code == 400
    assert [r.model for r in mock_provider.requests] == ["mock-503"]
