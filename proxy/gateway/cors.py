"""CORS for browser apps calling /api/v1, applied at the ASGI edge.

It wraps the whole application rather than living in Django because completions never reach
Django (proxy.gateway.app answers them first): one wrapper gives the gateway's own routes and
Django's API views the same preflight answer and the same response headers. Requests without an
`Origin` header (every server-side SDK) pass straight through, untouched.

Allowed origins come from settings.CORS_ALLOWED_ORIGINS; the default `*` is what OpenRouter does for
its API (a bearer key, not a cookie, authorizes the call, so any page may make it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/v1"
ALLOW_METHODS = b"GET, POST, PATCH, DELETE, OPTIONS"
# What OpenRouter's clients send from a browser: the key, JSON, app attribution, and the Anthropic
# SDK's own auth/version headers for the Messages skin.
ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "http-referer",
    "x-title",
    "x-openrouter-title",
    "x-openrouter-categories",
    "x-openrouter-metadata",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
)
# The openai and anthropic SDKs add telemetry headers named x-stainless-*; refusing them fails every call.
ALLOW_HEADER_PREFIXES = ("x-stainless-",)
EXPOSE_HEADERS = b"Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
MAX_AGE = b"86400"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


class CorsPolicy:
    def __init__(self, allowed_origins: Iterable[str]) -> None:
        origins = [o.strip().rstrip("/") for o in allowed_origins if o.strip()]
        self.any_origin = "*" in origins
        self.origins = frozenset(o.lower() for o in origins if o != "*")

    def allow_origin(self, origin: bytes) -> bytes | None:
        """The Access-Control-Allow-Origin value for this origin, or None when it is not allowed."""
        if self.any_origin:
            return b"*"
        text = origin.decode("latin-1").strip().rstrip("/").lower()
        return origin if text in self.origins else None

    def allow_headers(self, requested: bytes | None) -> bytes:
        names = list(ALLOW_HEADERS)
        for raw in (requested or b"").decode("latin-1").split(","):
            name = raw.strip().lower()
            if name.startswith(ALLOW_HEADER_PREFIXES) and name not in names:
                names.append(name)
        return ", ".join(names).encode("latin-1")

    def response_headers(self, allow_origin: bytes) -> list[tuple[bytes, bytes]]:
        headers = [(b"access-control-allow-origin", allow_origin), (b"access-control-expose-headers", EXPOSE_HEADERS)]
        if allow_origin != b"*":
            headers.append((b"vary", b"Origin"))
        return headers


async def _send_preflight(send: Send, policy: CorsPolicy, scope: Scope, origin: bytes) -> None:
    allow_origin = policy.allow_origin(origin)
    if allow_origin is None:
        body = orjson.dumps({"error": {"code": 403, "message": "Origin not allowed", "metadata": None}})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    headers = [
        *policy.response_headers(allow_origin),
        (b"access-control-allow-methods", ALLOW_METHODS),
        (b"access-control-allow-headers", policy.allow_headers(_header(scope, b"access-control-request-headers"))),
        (b"access-control-max-age", MAX_AGE),
        (b"content-length", b"0"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def with_cors(app: ASGIApp, allowed_origins: Iterable[str] | None = None) -> ASGIApp:
    """`app` with CORS on /api/v1: preflights answered here, allowed origins' responses given the headers."""
    if allowed_origins is None:
        from django.conf import settings

        allowed_origins = settings.CORS_ALLOWED_ORIGINS
    policy = CorsPolicy(allowed_origins)

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None:
            await app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None:
            await _send_preflight(send, policy, scope, origin)
            return
        allow_origin = policy.allow_origin(origin)
        if allow_origin is None:
            await app(scope, receive, send)  # served, but the browser will not hand it to the page
            return
        extra = policy.response_headers(allow_origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers") or () if not bytes(k).startswith(b"access-control-")]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        await app(scope, receive, send_with_cors)

    return application
