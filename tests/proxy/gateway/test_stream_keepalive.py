"""While a stream waits for its upstream, the client gets SSE comments, then the answer, in order."""

from __future__ import annotations

import asyncio

from pytest_django.fixtures import Settings

from tests.e2e.support import World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import MESSAGES, asgi_client, stream, streamed_text

KEEPALIVE = ": OPENROUTER PROCESSING"


def test_a_slow_upstream_gets_keepalive_comments_before_the_first_token(
    live: World, mock_provider: MockProvider, settings: Settings
) -> None:
    settings.GATEWAY_KEEPALIVE_SECONDS = 0.2
    body = {"model": "mock-openai/slow-first-byte-2500", "messages": MESSAGES}

    async def main() -> tuple[int, str, str]:
        async with asgi_client(live.key.key) as client:
            response, events = await stream(client, body)
            return response.status_code, response.text, streamed_text(events)

    status, raw, text = asyncio.run(main())
    assert status == 200, raw
    before_content = raw.split("data:", 1)[0]
    # 2.5 s of waiting at one comment per 0.2 s: about a dozen, each whole, all before any data.
    assert 8 <= before_content.count(KEEPALIVE) <= 13, before_content
    assert before_content.replace(KEEPALIVE + "\n\n", "") == ""
    assert KEEPALIVE not in raw.split("data:", 1)[1]
    assert text
    assert raw.rstrip().endswith("data: [DONE]")


def test_a_fast_upstream_gets_no_comment(live: World, mock_provider: MockProvider, settings: Settings) -> None:
    settings.GATEWAY_KEEPALIVE_SECONDS = 0.2
    body = {"model": "mock-openai/ok", "messages": MESSAGES}

    async def main() -> str:
        async with asgi_client(live.key.key) as client:
            response, _ = await stream(client, body)
            assert response.status_code == 200, response.text
            return response.text

    assert KEEPALIVE not in asyncio.run(main())
