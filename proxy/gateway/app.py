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

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.gateway import metrics, tracing
from proxy.gateway.cors import with_cors
from proxy.gateway.errors import GatewayError
from proxy.gateway.http import ClientDisconnected, Receive, Scope, Send, send_bytes, send_json
from proxy.skins import MessagesSkin, ResponsesSkin, Skin

logger = logging.getLogger("proxy.gateway")

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COMPLETION_PATHS = {
    "/api/v1/chat/completions": False,
    "/api/v1/completions": True,  # legacy text completions
}
# The other client protocols: the same core, rendered by a skin (proxy/skins). One skin per request.
SKIN_PATHS: dict[str, Callable[[], Skin]] = {
    "/api/v1/messages": MessagesSkin,
    "/api/v1/responses": ResponsesSkin,
}
COUNT_TOKENS_PATH = "/api/v1/messages/count_tokens"
EMBEDDINGS_PATH = "/api/v1/embeddings"


async def handle_completion(
    scope: Scope, receive: Receive, send: Send, *, legacy: bool, skin: Skin | None = None
) -> None:
    from proxy.gateway.admission import admit
    from proxy.gateway.nonstream import run_once
    from proxy.gateway.settle import release
    from proxy.gateway.streaming import run_stream

    if scope["method"] != "POST":
        await _send_error(send, GatewayError(405, "Method not allowed; use POST"), skin)
        return
    api, send = metrics.api_name(legacy=legacy, skin=skin), metrics.StatusRecorder(send)
    try:
        with tracing.phase_span("admission"):
            call = await admit(scope, receive, legacy=legacy, skin=skin)
    except GatewayError as exc:
        await _send_error(send, exc, skin)
        metrics.refused(api, send, exc.status)
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
        await _internal_error(send, skin)
    metrics.completed(api, send, call)  # after the response went out


async def handle_count_tokens(scope: Scope, receive: Receive, send: Send) -> None:
    """Anthropic's token counter: the gateway's own prompt estimate (the one credit holds use), no upstream call."""
    from proxy.gateway.admission import count_tokens

    skin = MessagesSkin()
    if scope["method"] != "POST":
        await _send_error(send, GatewayError(405, "Method not allowed; use POST"), skin)
        return
    try:
        tokens = await count_tokens(scope, receive, skin)
    except GatewayError as exc:
        await _send_error(send, exc, skin)
        return
    except ClientDisconnected:
        return
    await send_json(send, 200, {"input_tokens": tokens})


async def _embeddings(scope: Scope, receive: Receive, send: Send) -> None:
    from proxy.gateway.embeddings import handle_embeddings

    try:
        await handle_embeddings(scope, receive, send)
    except Exception:
        logger.exception("embeddings request failed before it was admitted")
        await _internal_error(send)


def build_application(django_app: ASGIApp) -> ASGIApp:
    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == EMBEDDINGS_PATH:
                await _embeddings(scope, receive, send)
                return
            legacy = COMPLETION_PATHS.get(path)
            skin_factory = SKIN_PATHS.get(path)
            if legacy is None and skin_factory is None and path != COUNT_TOKENS_PATH:
                await django_app(scope, receive, send)
                return
            skin = skin_factory() if skin_factory is not None else None
            try:
                if path == COUNT_TOKENS_PATH:
                    await handle_count_tokens(scope, receive, send)
                else:
                    with tracing.request_span(path):
                        await handle_completion(scope, receive, send, legacy=bool(legacy), skin=skin)
            except Exception:
                logger.exception("completion request failed before it was admitted")
                await _internal_error(send, skin)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await django_app(scope, receive, send)

    # CORS wraps both the gateway's routes and Django's: one preflight answer for all of /api/v1.
    return with_cors(application)


async def _send_error(send: Send, error: GatewayError, skin: Skin | None) -> None:
    await send_bytes(send, error.status, error.body(skin), error.headers)


async def _internal_error(send: Send, skin: Skin | None = None) -> None:
    # If the response had already started there is nothing more to tell the client.
    with contextlib.suppress(Exception):
        await _send_error(send, GatewayError(500, "Internal error"), skin)


async def _lifespan(receive: Receive, send: Send) -> None:
    from common.redis import close_async_redis
    from proxy.gateway.invalidation import subscribe_forever
    from proxy.health import get_health_store
    from proxy.transport import transport

    invalidations: asyncio.Task[None] | None = None
    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "lifespan.startup":
            # Everything imported so far lives for the whole process: keep the collector off it.
            gc.collect()
            gc.freeze()
            invalidations = asyncio.get_running_loop().create_task(subscribe_forever())
            tracing.configure()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if invalidations is not None:
                invalidations.cancel()
            tracing.shutdown()
            # Buffered health records are written before the Redis clients close.
            await get_health_store().close()
            await transport.close()
            await close_async_redis()
            await send({"type": "lifespan.shutdown.complete"})
            return
