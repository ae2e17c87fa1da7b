"""Response healing through the gateway: the mock provider answers JSON mode with messy JSON."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from proxy.models import Endpoint
from tests.e2e.support import World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client

SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}


def ask(world: World, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with asgi_client(world.key.key) as client:
            return [await client.post(PATH, json=body) for body in bodies]

    return asyncio.run(main())


def test_it_heals_json_answers_when_asked_and_only_then(live: World, mock_provider: MockProvider) -> None:
    endpoint = Endpoint.objects.get(model__slug="mock-openai/ok")
    endpoint.upstream_model = "mock-messy-json"
    endpoint.save()
    json_mode = {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}
    base = {"model": "mock-openai/ok", "messages": MESSAGES, "response_format": json_mode}
    healed, untouched, failed = ask(
        live,
        [
            {**base, "plugins": [{"id": "response-healing"}]},
            base,
            {**base, "response_format": {"type": "json_object"}, "plugins": [{"id": "response-healing"}],
             "model": "mock-anthropic/ok"},
        ],
    )  # fmt: skip
    assert healed.status_code == 200, healed.text
    message = healed.json()["choices"][0]["message"]
    assert orjson.loads(message["content"]) == {"answer": 42}
    assert untouched.json()["choices"][0]["message"]["content"].startswith("Sure! Here it is:")
    # The anthropic mock answers plain prose: nothing to repair, so the choice says so.
    failed_choice = failed.json()["choices"][0]
    assert failed.status_code == 200
    assert failed_choice["message"]["content"] == "Hello from the mock provider."
    assert failed_choice["error"]["metadata"]["error_type"] == "response_healing_failed"
