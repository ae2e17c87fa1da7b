"""Anthropic's streaming events turned into OpenAI chunk choices.

Anthropic streams content *blocks* (text, thinking, tool_use), each opened, grown by deltas and
closed, with their own block index; OpenAI streams one delta per chunk with tool calls keyed by
their own index. The parser keeps the mapping from Anthropic block index to tool-call index (or
reasoning-detail index) so argument fragments land on the right call.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from billing.pricing import Usage
from proxy.providers._common import dumps, loads
from proxy.providers.anthropic.wire import FINISH, REASONING_FORMAT, error_from_body, usage_from
from proxy.schemas import ChunkChoice, Delta, ReasoningDetail
from proxy.sse import SSEEvent

_TEXT, _TOOL, _THINKING, _OTHER = 0, 1, 2, 3


class AnthropicStreamParser:
    def __init__(self) -> None:
        self.upstream_id = ""
        self.usage: Usage | None = None
        self.finished = False
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self._blocks: dict[int, tuple[int, int]] = {}  # block index -> (kind, tool or detail index)
        self._tools = 0
        self._details = 0
        self._started = False

    def _emit(self, delta: Delta, finish: str | None = None, native: str | None = None) -> list[ChunkChoice]:
        if not self._started and finish is None:
            self._started = True
            delta["role"] = "assistant"
        return [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": native, "logprobs": None}]  # type: ignore[typeddict-item]

    def feed(self, event: SSEEvent) -> list[ChunkChoice]:
        obj = loads(event.data)
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type") or event.event
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "content_block_start":
            return self._start(obj)
        if kind == "message_start":
            message = obj.get("message") or {}
            self.upstream_id = message.get("id") or ""
            if message.get("usage"):
                self.usage = usage_from(message["usage"])
            return []
        if kind == "message_delta":
            return self._message_delta(obj)
        if kind == "message_stop":
            self.finished = True
            return []
        if kind == "error":
            raise error_from_body(obj)
        return []  # ping, content_block_stop, and event types added after this was written

    def _start(self, obj: dict[str, Any]) -> list[ChunkChoice]:
        index = obj.get("index", 0)
        block = obj.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = (_TEXT, 0)
            return self._emit({"content": block["text"]}) if block.get("text") else []
        if kind == "tool_use":
            tool_index = self._tools
            self._tools += 1
            self._blocks[index] = (_TOOL, tool_index)
            arguments = dumps(block["input"]).decode() if block.get("input") else ""
            return self._emit(
                {
                    "tool_calls": [
                        {
                            "index": tool_index,
                            "id": block["id"],
                            "type": "function",
                            "function": {"name": block["name"], "arguments": arguments},
                        }
                    ]
                }
            )
        if kind in ("thinking", "redacted_thinking"):
            detail_index = self._details
            self._details += 1
            self._blocks[index] = (_THINKING, detail_index)
            if kind == "redacted_thinking":
                encrypted: ReasoningDetail = {
                    "type": "reasoning.encrypted",
                    "data": block.get("data") or "",
                    "format": REASONING_FORMAT,
                    "index": detail_index,
                }
                return self._emit({"reasoning_details": [encrypted]})
            if block.get("thinking"):
                return self._thinking(block["thinking"], detail_index)
            return []
        self._blocks[index] = (_OTHER, 0)
        return []

    def _thinking(self, text: str, detail_index: int) -> list[ChunkChoice]:
        detail = {"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": detail_index}
        return self._emit({"reasoning": text, "reasoning_details": [detail]})  # type: ignore[list-item]

    def _delta(self, obj: dict[str, Any]) -> list[ChunkChoice]:
        kind, sub = self._blocks.get(obj.get("index", 0), (_OTHER, 0))
        delta = obj.get("delta") or {}
        dtype = delta.get("type")
        if dtype == "text_delta":
            text = delta.get("text") or ""
            return self._emit({"content": text}) if text else []
        if dtype == "input_json_delta" and kind == _TOOL:
            partial = delta.get("partial_json") or ""
            if not partial:
                return []
            return self._emit({"tool_calls": [{"index": sub, "function": {"arguments": partial}}]})
        if dtype == "thinking_delta" and kind == _THINKING:
            text = delta.get("thinking") or ""
            return self._thinking(text, sub) if text else []
        if dtype == "signature_delta" and kind == _THINKING:
            detail = {
                "type": "reasoning.text",
                "text": "",
                "signature": delta.get("signature"),
                "format": REASONING_FORMAT,
                "index": sub,
            }
            return self._emit({"reasoning_details": [detail]})  # type: ignore[list-item]
        return []  # citations_delta and future delta types

    def _message_delta(self, obj: dict[str, Any]) -> list[ChunkChoice]:
        raw_usage = obj.get("usage") or {}
        if raw_usage:
            # output_tokens here is cumulative; newer API versions also repeat the input counts.
            base = self.usage or Usage()
            update = usage_from(raw_usage) if "input_tokens" in raw_usage else None
            self.usage = replace(
                update or base,
                completion_tokens=int(raw_usage.get("output_tokens") or base.completion_tokens),
            )
        native = (obj.get("delta") or {}).get("stop_reason")
        if not native:
            return []
        return self._emit({}, FINISH.get(native, "stop"), native)
