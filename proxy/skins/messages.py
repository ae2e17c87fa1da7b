"""The Anthropic Messages skin (`POST /api/v1/messages`): the core's chat answer as Anthropic's.

Streams follow Anthropic's event order: message_start, ping, then for each content block
content_block_start / content_block_delta... / content_block_stop, then message_delta (stop
reason and cumulative usage) and message_stop. Chat chunks carry no block boundaries, so a block
closes when a delta of another kind (thinking, text, a new tool call) arrives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from proxy.skins.base import RenderContext, StreamRenderer, sse
from proxy.skins.details import ANTHROPIC_FORMAT, is_native, pack
from proxy.skins.messages_request import to_chat

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}
NATIVE_STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"}
)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def stop_reason(finish: str | None, native: str | None) -> str:
    if native in NATIVE_STOP_REASONS:
        return str(native)
    return STOP_REASONS.get(finish or "stop", "end_turn")


def anthropic_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Chat usage counts cache reads and writes inside prompt_tokens; Anthropic's input_tokens does not."""
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    return {
        "input_tokens": max(int(usage["prompt_tokens"]) - cached - written, 0),
        "output_tokens": int(usage["completion_tokens"]),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        # OpenRouter's accounting, as on chat: what this request was charged.
        "cost": usage.get("cost"),
        "is_byok": usage.get("is_byok"),
        "cost_details": usage.get("cost_details"),
    }


def thinking_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    details = message.get("reasoning_details") or []
    if not details:
        text = message.get("reasoning")
        return [{"type": "thinking", "thinking": text, "signature": ""}] if text else []
    blocks: list[dict[str, Any]] = []
    for detail in details:
        kind = detail.get("type")
        native = is_native(detail, ANTHROPIC_FORMAT)
        if kind == "reasoning.text":
            signature = detail.get("signature") or ""
            if signature and not native:
                signature = pack(detail)
            blocks.append({"type": "thinking", "thinking": detail.get("text") or "", "signature": signature})
        elif kind == "reasoning.summary":
            blocks.append({"type": "thinking", "thinking": detail.get("summary") or "", "signature": ""})
        elif kind == "reasoning.encrypted":
            data = (detail.get("data") or "") if native else pack(detail)
            blocks.append({"type": "redacted_thinking", "data": data})
    return blocks


def content_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = thinking_blocks(message)
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content:
        blocks.append({"type": "text", "text": content})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            arguments = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {"_raw_arguments": fn.get("arguments")}
        name = fn.get("name") or ""
        blocks.append({"type": "tool_use", "id": call.get("id") or "", "name": name, "input": arguments})
    return blocks


def _message(
    ctx: RenderContext, content: list[dict[str, Any]], stop: str | None, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": ctx.generation_id,
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "provider": ctx.provider_name,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


class MessagesStream:
    """Chat chunk choices in, Anthropic stream events out."""

    def __init__(self, ctx: RenderContext) -> None:
        self.ctx = ctx
        self.started = False
        self.index = -1
        self.open: str | None = None  # "text" | "thinking" | "tool" | None
        self.signed = False  # the open thinking block got its signature: more thinking is a new block
        self.tools: dict[int, int] = {}  # chat tool-call index -> block index
        self.finish: str | None = None
        self.native: str | None = None

    def _head(self, out: list[bytes]) -> None:
        if self.started:
            return
        self.started = True
        usage = {"input_tokens": self.ctx.prompt_tokens, "output_tokens": 0}
        usage |= {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        out.append(sse("message_start", {"type": "message_start", "message": _message(self.ctx, [], None, usage)}))
        out.append(sse("ping", {"type": "ping"}))

    def _close(self, out: list[bytes]) -> None:
        if self.open is not None:
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": self.index}))
            self.open = None

    def _start(self, out: list[bytes], kind: str, block: dict[str, Any]) -> None:
        self._close(out)
        self.index += 1
        self.open = kind
        self.signed = False
        payload = {"type": "content_block_start", "index": self.index, "content_block": block}
        out.append(sse("content_block_start", payload))

    def _delta(self, out: list[bytes], delta: dict[str, Any], index: int | None = None) -> None:
        payload = {"type": "content_block_delta", "index": self.index if index is None else index, "delta": delta}
        out.append(sse("content_block_delta", payload))

    def _thinking(self, out: list[bytes], text: str) -> None:
        if self.open != "thinking" or self.signed:
            self._start(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        self._delta(out, {"type": "thinking_delta", "thinking": text})

    def _details(self, out: list[bytes], details: list[dict[str, Any]], has_text: bool) -> None:
        for detail in details:
            kind = detail.get("type")
            native = is_native(detail, ANTHROPIC_FORMAT)
            if kind == "reasoning.text":
                if detail.get("text") and not has_text:
                    self._thinking(out, detail["text"])
                if detail.get("signature"):
                    if self.open != "thinking" or self.signed:
                        self._start(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                    signature = detail["signature"] if native else pack(detail)
                    self._delta(out, {"type": "signature_delta", "signature": signature})
                    self.signed = True
            elif kind == "reasoning.summary" and detail.get("summary") and not has_text:
                self._thinking(out, detail["summary"])
            elif kind == "reasoning.encrypted":
                data = (detail.get("data") or "") if native else pack(detail)
                self._start(out, "redacted", {"type": "redacted_thinking", "data": data})
                self._close(out)

    def _tool(self, out: list[bytes], call: dict[str, Any]) -> None:
        position = int(call.get("index") or 0)
        fn = call.get("function") or {}
        if position not in self.tools:
            call_id = call.get("id") or f"toolu_{self.ctx.generation_id}_{position}"
            self._start(out, "tool", {"type": "tool_use", "id": call_id, "name": fn.get("name") or "", "input": {}})
            self.tools[position] = self.index
        if fn.get("arguments"):
            self._delta(out, {"type": "input_json_delta", "partial_json": fn["arguments"]}, self.tools[position])

    def choices(self, choices: Sequence[Any]) -> bytes:
        out: list[bytes] = []
        self._head(out)
        for choice in choices:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning")
            if reasoning:
                self._thinking(out, reasoning)
            self._details(out, delta.get("reasoning_details") or [], bool(reasoning))
            if delta.get("content"):
                if self.open != "text":
                    self._start(out, "text", {"type": "text", "text": ""})
                self._delta(out, {"type": "text_delta", "text": delta["content"]})
            for call in delta.get("tool_calls") or ():
                self._tool(out, call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.native = choice.get("native_finish_reason")
        return b"".join(out)

    def final(self, usage: dict[str, Any]) -> bytes:
        out: list[bytes] = []
        self._head(out)
        self._close(out)
        delta = {"stop_reason": stop_reason(self.finish, self.native), "stop_sequence": None}
        out.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": anthropic_usage(usage)}))
        out.append(sse("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, error: dict[str, Any], usage: dict[str, Any] | None) -> bytes:
        # Anthropic ends a failed stream with one error event; the billed usage is on the generation.
        return sse("error", render_error(int(error.get("code") or 500), str(error.get("message") or ""), None))


def render_error(status: int, message: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
    if metadata and metadata.get("error_type"):
        error["error_type"] = metadata["error_type"]
    return {"type": "error", "error": error, "request_id": None}


class MessagesSkin:
    name = "messages"

    def translate(self, body: dict[str, Any]) -> dict[str, Any]:
        return to_chat(body)

    def render_body(self, ctx: RenderContext, choices: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
        choice = choices[0] if choices else {}
        message = choice.get("message") or {}
        stop = stop_reason(choice.get("finish_reason"), choice.get("native_finish_reason"))
        return _message(ctx, content_blocks(message), stop, anthropic_usage(usage))

    def stream_renderer(self, ctx: RenderContext) -> StreamRenderer:
        return MessagesStream(ctx)

    def render_error(self, status: int, message: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
        return render_error(status, message, metadata)
