"""Just enough ASGI: read a bounded body, send JSON, start an SSE stream, notice a disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import orjson
from django.conf import settings

from proxy.gateway.errors import GatewayError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientDisconnected(Exception):
    pass


def header(scope: Scope, name: bytes) -> str:
    """One request header by lower-case name ('' when absent)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, within `limit` bytes (else 413) and REQUEST_BODY_TIMEOUT_SECONDS (else 408)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.REQUEST_BODY_TIMEOUT_SECONDS):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                body = message.get("body", b"")
                size += len(body)
                if size > limit:
                    raise GatewayError(413, f"Request body larger than {limit} bytes")
                chunks.append(body)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise GatewayError(408, "The request body did not arrive in time") from None


def with_body_deadline(app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """For the Django side: read a request's body under the same deadline and size limit before the
    app sees it (Django's ASGI handler would wait for a stalled body forever, holding a worker)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await app(scope, receive, send)
            return
        try:
            body = await read_body(receive, settings.MAX_REQUEST_BYTES)
        except ClientDisconnected:
            return
        except GatewayError as exc:
            await send_json(send, exc.status, exc.envelope(), {"connection": "close"})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body, only http.disconnect is left to hear
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    return wrapped


def _raw_headers(content_type: bytes, extra: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    if extra:
        headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return headers


async def send_json(send: Send, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
    await send_bytes(send, status, orjson.dumps(payload), headers)


async def send_bytes(send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _raw_headers(b"application/json", headers)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_error(send: Send, error: GatewayError) -> None:
    await send_bytes(send, error.status, error.body(), error.headers)


async def start_sse(send: Send, headers: Mapping[str, str]) -> None:
    raw = _raw_headers(b"text/event-stream", headers)
    raw.append((b"cache-control", b"no-cache"))
    raw.append((b"x-accel-buffering", b"no"))  # nginx in front must not buffer the stream
    await send({"type": "http.response.start", "status": 200, "headers": raw})


async def send_chunk(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def end_body(send: Send) -> None:
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def join(parts: Iterable[bytes]) -> bytes:
    return b"".join(parts)
