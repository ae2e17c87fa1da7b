"""The ASGI application: completions go to the gateway's own handler, everything else to Django.

Why not a Django (or DRF) view for the hot path: measured on one core, a stock Django async view
spends 0.7-0.9 ms of CPU per request before any business logic, most of it two thread hops
(sync `request_started` receivers and `response.close()` under `sync_to_async`), and DRF's
APIView is synchronous (the `adrf` add-on buffers streamed responses). A plain ASGI handler keeps
DRF's conventions where they cost nothing: an authentication step (`auth.authenticate`), a
permission check (management keys refused), and one exception type rendered by one envelope
(`errors.GatewayError`). See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.gateway.errors import GatewayError
from proxy.gateway.http import ClientDisconnected, Receive, Scope, Send, send_error, send_json

logger = logging.getLogger("proxy.gateway")

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COMPLETION_PATHS = {
    "/api/v1/chat/completions": False,
    "/api/v1/completions": True,  # legacy text completions
}


async def handle_completion(scope: Scope, receive: Receive, send: Send, *, legacy: bool) -> None:
    from proxy.gateway.admission import admit
    from proxy.gateway.nonstream import run_once
    from proxy.gateway.settle import release
    from proxy.gateway.streaming import run_stream

    if scope["method"] != "POST":
        await send_error(send, GatewayError(405, "Method not allowed; use POST"))
        return
    try:
        call = await admit(scope, receive, legacy=legacy)
    except GatewayError as exc:
        await send_error(send, exc)
        return
    except ClientDisconnected:
        return
    try:
        if call.req.stream:
            await run_stream(call, send, receive)
        else:
            await run_once(call, send)
    except Exception:
        # Never a stack trace to the client, never a leaked reservation.
        logger.exception("completion %s failed", call.generation_id)
        await release(call)
        await _internal_error(send)


def build_application(django_app: ASGIApp) -> ASGIApp:
    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            legacy = COMPLETION_PATHS.get(scope["path"])
            if legacy is not None:
                try:
                    await handle_completion(scope, receive, send, legacy=legacy)
                except Exception:
                    logger.exception("completion request failed before it was admitted")
                    await _internal_error(send)
                return
            await django_app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await django_app(scope, receive, send)

    return application


async def _internal_error(send: Send) -> None:
    # If the response had already started there is nothing more to tell the client.
    with contextlib.suppress(Exception):
        await send_json(send, 500, GatewayError(500, "Internal error").envelope())


async def _lifespan(receive: Receive, send: Send) -> None:
    from common.redis import close_async_redis
    from proxy.transport import transport

    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "lifespan.startup":
            # Everything imported so far lives for the whole process: keep the collector off it.
            gc.collect()
            gc.freeze()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await transport.close()
            await close_async_redis()
            await send({"type": "lifespan.shutdown.complete"})
            return
