"""Helpers every adapter shares: error classification, reasoning budgets, content and JSON utilities."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from proxy.providers.base import ProviderError
from proxy.schemas import ChatRequest, Message, NormalizedReasoning, ReasoningDetail

GENERIC_MESSAGE = "Provider returned error"

# Contract 2.8: effort is roughly the share of max_tokens spent thinking.
EFFORT_SHARE: Mapping[str, float] = {
    "max": 0.95,
    "xhigh": 0.95,
    "high": 0.8,
    "medium": 0.5,
    "low": 0.2,
    "minimal": 0.1,
}

_CONTEXT_HINTS = ("context length", "context window", "maximum context", "prompt is too long", "too many tokens")


def loads(body: bytes | str) -> Any:
    """Parsed JSON, or the text itself when the upstream did not send JSON (proxies' HTML pages)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace") if isinstance(body, bytes) else body


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup: the transport gives lower-case names, tests and callers any case."""
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def classify(
    upstream_status: int,
    message: str | None,
    raw: object,
    *,
    retry_after: float | None = None,
    overloaded: bool = False,
) -> ProviderError:
    """One policy for every provider (documented in docs/adapters.md, "Error mapping").

    401/403 mean OUR key (platform or BYOK) was refused: the client did nothing wrong and another
    endpoint may well work, so they become a retryable 502. A 404 from an upstream means the
    endpoint is misconfigured (wrong model name or URL), not that the client erred: same treatment.
    """
    msg = message or GENERIC_MESSAGE
    s = upstream_status

    def err(status: int, error_type: str, retryable: bool) -> ProviderError:
        return ProviderError(
            status,
            msg,
            upstream_status=s,
            raw=raw,
            retryable=retryable,
            error_type=error_type,
            retry_after=retry_after,
        )

    if overloaded or s in (503, 529):
        return err(502, "provider_overloaded", True)
    if s == 429:
        return err(429, "rate_limit_exceeded", True)
    if s in (408, 504, 524):
        return err(408, "timeout", True)
    if s == 413:
        return err(413, "payload_too_large", False)
    if s in (401, 402, 403, 404):
        return err(502, "provider_unavailable", True)
    if 400 <= s < 500:
        lowered = msg.lower()
        if any(hint in lowered for hint in _CONTEXT_HINTS):
            return err(400, "context_length_exceeded", False)
        return err(400, "invalid_request", False)
    return err(502, "provider_unavailable", True)


# -- reasoning ---------------------------------------------------------------------------------


def reasoning_of(request: ChatRequest) -> NormalizedReasoning | None:
    """The normalized reasoning control, or None when the client did not ask for (or disabled) thinking."""
    reasoning = request.get("reasoning")
    if not reasoning or not reasoning.get("enabled") or reasoning.get("effort") == "none":
        return None
    return reasoning


def reasoning_disabled(request: ChatRequest) -> bool:
    """The client explicitly turned thinking off (as opposed to not mentioning it)."""
    reasoning = request.get("reasoning")
    return bool(reasoning) and (not reasoning.get("enabled") or reasoning.get("effort") == "none")  # type: ignore[union-attr]


def budget_from_effort(effort: str | None, base_tokens: int) -> int:
    share = EFFORT_SHARE.get(effort or "medium", 0.5)
    return int(base_tokens * share)


def effort_from_budget(budget: int, max_tokens: int | None) -> str:
    """Budget-style request to an effort-only model: the inverse of the share rule."""
    share = budget / max_tokens if max_tokens else min(budget / 32_000, 1.0)
    if share >= 0.65:
        return "high"
    if share >= 0.35:
        return "medium"
    if share >= 0.15:
        return "low"
    return "minimal"


# -- content -----------------------------------------------------------------------------------


def parse_data_url(url: str) -> tuple[str, str] | None:
    """("image/png", "<base64>") for a base64 data: URL, else None."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[5:-7] or "application/octet-stream", data


_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "heic": "image/heic",
}


def mime_from_url(url: str, default: str = "image/jpeg") -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _EXT_MIME.get(ext, default)


def text_of(content: Any) -> str:
    """The text of a string-or-parts content (non-text parts are ignored)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


def parse_arguments(arguments: str | None) -> Any:
    """Tool-call arguments as an object. Models occasionally emit invalid JSON; keep it rather than fail."""
    if not arguments:
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}


def arguments_object(arguments: str | None) -> dict[str, Any]:
    """Arguments as the JSON object Anthropic's `input` and Gemini's `args` must be."""
    value = parse_arguments(arguments)
    return value if isinstance(value, dict) else {"value": value}


def named_content(message: Message) -> Any:
    """Contract 2.2: for non-OpenAI models a message `name` is prepended as "{name}: {content}"."""
    content = message.get("content")
    name = message.get("name")
    if not name:
        return content
    if isinstance(content, str):
        return f"{name}: {content}"
    if isinstance(content, list):
        parts: list[Any] = list(content)
        for i, part in enumerate(parts):
            if part.get("type") == "text":
                parts[i] = {**part, "text": f"{name}: {part.get('text', '')}"}
                return parts
    return content


def stop_list(stop: str | list[str] | None) -> list[str]:
    if not stop:
        return []
    return [stop] if isinstance(stop, str) else [s for s in stop if s]


def tool_names_by_id(messages: Iterable[Message]) -> dict[str, str]:
    """Tool-call id -> function name, from the assistant turns (Gemini answers by name, not by id)."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[call["id"]] = call["function"]["name"]
    return names


def normalize_finish(native: str | None, *, has_tool_calls: bool = False) -> str | None:
    """OpenAI-compatible hosts invent their own values; fold them into the five the contract allows."""
    if native is None:
        return None
    if native in ("tool_calls", "function_call") or (has_tool_calls and native == "stop"):
        return "tool_calls"
    if native in ("length", "max_tokens", "model_length"):
        return "length"
    if native in ("content_filter", "safety"):
        return "content_filter"
    if native == "error":
        return "error"
    return "stop"


def text_details(text: str) -> list[ReasoningDetail]:
    """Plain chain-of-thought text as `reasoning_details` (contract 2.8). OpenAI-style hosts send no
    signature or format of their own, so the block is `format: "unknown"`; streamed pieces share
    index 0, which is how clients (and `merge_details`) join them back into one block."""
    return [{"type": "reasoning.text", "text": text, "format": "unknown", "index": 0}]


def merge_details(details: list[ReasoningDetail]) -> list[ReasoningDetail]:
    """Streamed reasoning_details arrive as fragments sharing an `index`; join them back into blocks."""
    merged: list[ReasoningDetail] = []
    by_key: dict[tuple[str, int], ReasoningDetail] = {}
    for detail in details:
        index = detail.get("index")
        key = (detail["type"], index) if isinstance(index, int) else None
        if key is not None and key in by_key:
            target = by_key[key]
            if "text" in detail:
                target["text"] = (target.get("text") or "") + (detail.get("text") or "")
            if "data" in detail:
                target["data"] = (target.get("data") or "") + (detail.get("data") or "")
            if detail.get("signature"):
                target["signature"] = detail["signature"]
            continue
        copy: ReasoningDetail = {**detail}
        merged.append(copy)
        if key is not None:
            by_key[key] = copy
    return merged
