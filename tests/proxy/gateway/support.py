"""The gateway's ASGI application driven in process: httpx.ASGITransport in front of
`openrouter_site.asgi.application`, the mock provider (a thread) behind it, real PostgreSQL and Redis.

The catalog, world and credentials are the end-to-end harness's (tests/e2e/support.py); the
credentials go into `settings.PROVIDER_ENV` instead of a process environment. Each test runs its
requests in one event loop (`asyncio.run`), and `asgi_client()` closes what that loop opened: the
health store's buffer, the upstream session and the loop's Redis clients (what lifespan shutdown
does for a real process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.db import connections

from common.redis import close_async_redis
from openrouter_site.asgi import application
from proxy.gateway.auth import caches_clear
from proxy.gateway.catalog import reset_catalog
from proxy.health import get_health_store
from proxy.transport import transport
from tests.mockprovider.sse import SSEStream, parse_sse

PATH = "/api/v1/chat/completions"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Say hello"}]


@asynccontextmanager
async def asgi_client(key: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process application; a fresh catalog snapshot and key cache per test."""
    reset_catalog()
    caches_clear()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    asgi = httpx.ASGITransport(app=application)  # type: ignore[arg-type]
    try:
        async with httpx.AsyncClient(transport=asgi, base_url="http://gateway.test", headers=headers) as client:
            yield client
    finally:
        # The lifespan shutdown's order: buffered health records are written before Redis closes.
        await get_health_store().close()
        await transport.close()
        await close_async_redis()
        # The key and catalog reads ran in asgiref's worker thread, on its own connection: close it, or
        # the test database cannot be dropped at the end of the run.
        await sync_to_async(connections.close_all)()


async def open_circuit(endpoint_id: int, failures: int) -> None:
    """Record enough consecutive failures for the endpoint's circuit to open (HEALTH_CB_FAILURES)."""
    store = get_health_store()
    for n in range(failures):
        await store.record(endpoint_id, ok=False, org_id=n % 2)  # two tenants: see HEALTH_CB_MIN_ORGS
    assert (await store.view([endpoint_id])).get(endpoint_id).circuit_open


async def stream(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[httpx.Response, SSEStream]:
    response = await client.post(PATH, json={**body, "stream": True})
    return response, parse_sse(response.text)


def streamed_text(events: SSEStream) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for d in events.data() for c in d.get("choices", ()))
