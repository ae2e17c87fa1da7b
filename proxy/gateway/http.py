"""Just enough ASGI: read a bounded body, send JSON, start an SSE stream, notice a disconnect."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any

import orjson

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
    chunks: list[bytes] = []
    size = 0
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
