"""The interface the gateway renders through when a request came in on a skin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson


class SkinRequestError(Exception):
    """The skin's request cannot be translated: the gateway answers 400 in the skin's error shape."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What every rendering needs to know about the answering attempt."""

    generation_id: str
    created: int
    model: str
    provider_name: str
    prompt_tokens: int  # the admission estimate: what a stream can say before the upstream reports usage


class StreamRenderer(Protocol):
    """Stateful, one per streamed answer: chat chunk choices in, the skin's SSE bytes out."""

    def choices(self, choices: Sequence[Any]) -> bytes: ...

    def final(self, usage: dict[str, Any]) -> bytes: ...

    def error(self, error: dict[str, Any], usage: dict[str, Any] | None) -> bytes: ...


class Skin(Protocol):
    """One instance per request (it may keep the original request to echo it back)."""

    name: str

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat-completions body for this request; raises SkinRequestError."""
        ...

    def render_body(
        self, ctx: RenderContext, choices: list[dict[str, Any]], usage: dict[str, Any]
    ) -> dict[str, Any]: ...

    def stream_renderer(self, ctx: RenderContext) -> StreamRenderer: ...

    def render_error(self, status: int, message: str, metadata: dict[str, Any] | None) -> dict[str, Any]: ...


def sse(event: str, payload: dict[str, Any]) -> bytes:
    """One named SSE event (both skins name their events, unlike chat completions)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
