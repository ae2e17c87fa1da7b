"""A client that stops sending its request body gets 408 and releases the worker, on the gateway's
completions path and on every Django path; a body that arrives in pieces in time goes through."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pytest_django.fixtures import Settings

from openrouter_site.asgi import application
from organizations.services import api_key_create
from proxy.gateway.http import Message
from tests.e2e.support import World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import asgi_client


def _scope(path: str, key: str, length: int) -> dict[str, Any]:
    headers = [
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(length).encode()),
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def _call(path: str, key: str, pieces: list[bytes], *, stall: bool) -> tuple[int, dict[str, Any]]:
    """Drive the ASGI app with a body sent in `pieces`, then (if `stall`) nothing more, ever."""
    sent: list[Message] = []
    queue = list(pieces)

    async def receive() -> Message:
        if queue:
            chunk = queue.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(queue) or stall}
        await asyncio.Event().wait()  # a client that went quiet without closing
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        async with asgi_client(key):  # the same per-test setup and teardown as the other gateway tests
            await asyncio.wait_for(application(_scope(path, key, sum(map(len, pieces)) + 10), receive, send), 10)

    asyncio.run(main())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], orjson.loads(body)


def test_a_stalled_completion_body_gets_408(live: World, mock_provider: MockProvider, settings: Settings) -> None:
    settings.REQUEST_BODY_TIMEOUT_SECONDS = 0.3
    status, body = _call("/api/v1/chat/completions", live.key.key, [b'{"model": "mock-openai/ok", '], stall=True)
    assert status == 408
    assert body["error"]["code"] == 408
    assert mock_provider.requests == []


def test_a_stalled_body_on_a_django_path_gets_408(live: World, settings: Settings) -> None:
    settings.REQUEST_BODY_TIMEOUT_SECONDS = 0.3
    management = api_key_create(organization=live.org, name="mgmt", is_management=True)
    status, body = _call("/api/v1/keys", management.key, [b'{"name": "half'], stall=True)
    assert status == 408
    assert body["error"]["code"] == 408


def test_a_body_in_pieces_reaches_django_whole(live: World, settings: Settings) -> None:
    management = api_key_create(organization=live.org, name="mgmt", is_management=True)
    status, body = _call("/api/v1/keys", management.key, [b'{"name": "made', b' in pieces"}'], stall=False)
    assert status == 201
    assert body["data"]["name"] == "made in pieces"
