"""Settlement in process: one gate call releases the hold and queues the usage event at the right cost."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from billing.gate import org_credit_view
from tests.e2e.support import World, assert_charged, expected_cost, generation, no_generation, usd
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider
from tests.mockprovider.sse import SSEStream
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client, stream

COST = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))


def test_a_completion_is_charged_its_usage_and_its_hold_released(live: World, mock_provider: MockProvider) -> None:
    async def main() -> tuple[httpx.Response, dict[str, int]]:
        async with asgi_client(live.key.key) as client:
            res = await client.post(PATH, json={"model": "mock-gemini/ok", "messages": MESSAGES})
            # Before settlement runs: the hold is gone, the charge waits in the usage queue.
            return res, await asyncio.to_thread(org_credit_view, live.org.pk)

    res, credit = asyncio.run(main())
    assert res.status_code == 200, res.text
    usage: dict[str, Any] = res.json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert usage["cost"] == usd(COST)
    assert credit["reserved"] == 0
    assert credit["unsettled"] == COST
    gen = generation(res.json()["id"])
    assert (gen.model, gen.tokens_prompt, gen.tokens_completion) == (
        "mock-gemini/ok",
        PROMPT_TOKENS,
        len(DEFAULT_PIECES),
    )
    assert_charged(live, gen, COST)
    assert org_credit_view(live.org.pk)["unsettled"] == 0


def test_a_stream_carries_its_cost_in_the_last_chunk(live: World, mock_provider: MockProvider) -> None:
    async def main() -> tuple[httpx.Response, SSEStream]:
        async with asgi_client(live.key.key) as client:
            return await stream(client, {"model": "mock-anthropic/ok", "messages": MESSAGES})

    res, events = asyncio.run(main())
    assert res.status_code == 200
    final = events.data()[-1]
    assert final["choices"] == []
    assert final["usage"]["cost"] == usd(COST)
    gen = generation(final["id"])
    assert gen.streamed
    assert_charged(live, gen, COST)
    assert org_credit_view(live.org.pk)["reserved"] == 0


def test_a_request_every_provider_failed_is_not_charged_and_its_hold_is_released(
    live: World, mock_provider: MockProvider
) -> None:
    async def main() -> httpx.Response:
        async with asgi_client(live.key.key) as client:
            return await client.post(PATH, json={"model": "mock-openai/503", "messages": MESSAGES})

    res = asyncio.run(main())
    assert res.status_code == 502  # the upstream's 503, as OpenRouter maps it (docs/adapters.md)
    assert res.json()["error"]["metadata"]["provider_name"] == "Mock OpenAI"
    assert org_credit_view(live.org.pk)["reserved"] == 0
    no_generation(res.headers["x-generation-id"], wait=0.2)
    assert org_credit_view(live.org.pk)["spent"] == 0
