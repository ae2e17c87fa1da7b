"""The adapter interface: what the gateway calls to talk to one kind of upstream API.

Adapters are pure translation. They never open a socket, read settings or touch the database: the
gateway owns transport, timeouts, retries and fail-over, and asks an adapter only to turn our
canonical (OpenAI-shaped) request into an `HttpCall` and the upstream's bytes back into ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from billing.pricing import Usage
from proxy.schemas import ChatRequest, ChunkChoice
from proxy.sse import SSEEvent


@dataclass(frozen=True, slots=True)
class Target:
    """Where one attempt goes: an endpoint resolved by routing, with the key to use (ours or BYOK)."""

    base_url: str  # OpenAI-compatible: ".../v1"; Anthropic: "https://api.anthropic.com"; Gemini: the googleapis host
    api_key: str
    upstream_model: str
    provider_slug: str
    extra_headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class HttpCall:
    """Always a POST with a JSON body."""

    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class ParsedCompletion:
    """A whole non-streamed answer, already OpenAI-shaped.

    `choices` items: {"index", "message": {"role", "content", "refusal", "reasoning",
    "reasoning_details"?, "tool_calls"?}, "finish_reason" (normalized), "native_finish_reason",
    "logprobs"}. `usage.prompt_tokens` includes cached and cache-write tokens and
    `usage.completion_tokens` includes reasoning tokens, whatever the upstream's convention.
    """

    upstream_id: str
    choices: list[dict[str, Any]]
    usage: Usage | None
    system_fingerprint: str | None = None
    service_tier: str | None = None


class ProviderError(Exception):
    """An upstream failure, already classified for the gateway.

    `status` is what OUR client should see if this is the final answer; `retryable` says whether the
    gateway may try another endpoint (rate limits, outages, timeouts, our own key being rejected)
    or must give up because the request itself is at fault.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        upstream_status: int | None = None,
        raw: object = None,
        retryable: bool = False,
        error_type: str = "provider_unavailable",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.upstream_status = upstream_status
        self.message = message
        self.raw = raw
        self.retryable = retryable
        self.error_type = error_type
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"ProviderError(status={self.status}, upstream_status={self.upstream_status}, "
            f"error_type={self.error_type!r}, retryable={self.retryable}, message={self.message!r})"
        )


class StreamParser(Protocol):
    """One per upstream stream, stateful. `feed` returns OpenAI chunk `choices` items.

    Each item: {"index", "delta": {...}, "finish_reason", "native_finish_reason", "logprobs"}.
    The first item that carries content has `delta.role == "assistant"`. Raises `ProviderError`
    when the upstream reports an error inside the stream.
    """

    upstream_id: str
    usage: Usage | None  # set once the upstream reported it
    finished: bool  # the upstream signalled its natural end
    system_fingerprint: str | None
    service_tier: str | None

    def feed(self, event: SSEEvent) -> list[ChunkChoice]: ...


class Adapter(Protocol):
    kind: str

    def build_request(self, request: ChatRequest, target: Target, *, stream: bool) -> HttpCall: ...

    def parse_response(self, body: bytes) -> ParsedCompletion: ...

    def stream_parser(self) -> StreamParser: ...

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError: ...


def hide_reasoning(choice: dict[str, Any]) -> bool:
    """Apply `reasoning.exclude` to one choice item (a whole `message` or a streamed `delta`), in place.

    The model still thinks (and bills for it); the client just does not see the text or the blocks.
    Returns False when a streamed item is left with nothing to send (no delta, no finish_reason).
    """
    message = choice.get("message")
    if message is not None:
        message["reasoning"] = None
        message.pop("reasoning_details", None)
        return True
    delta = choice.get("delta") or {}
    delta.pop("reasoning", None)
    delta.pop("reasoning_details", None)
    return bool(delta) or choice.get("finish_reason") is not None
