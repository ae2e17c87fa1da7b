"""Gemini's `streamGenerateContent?alt=sse` events turned into OpenAI chunk choices.

Every event is a whole GenerateContentResponse carrying only the new parts, with cumulative
usage. Function calls arrive whole (never split), so each becomes one tool-call fragment with
id, name and complete arguments; the parser only has to number them across chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from billing.pricing import Usage
from proxy.providers._common import loads
from proxy.providers.gemini.wire import PartsTranslation, error_from_body, finish_of, usage_from
from proxy.schemas import ChunkChoice
from proxy.sse import SSEEvent


class GeminiStreamParser:
    """Each SSE event is a whole GenerateContentResponse holding only the new parts."""

    def __init__(self) -> None:
        self.upstream_id = ""
        self.usage: Usage | None = None
        self.finished = False
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self._tools: dict[int, int] = {}
        self._details: dict[int, tuple[int, int | None]] = {}  # candidate -> (next detail, open thought)
        self._started: set[int] = set()

    def feed(self, event: SSEEvent) -> list[ChunkChoice]:
        obj = loads(event.data)
        if isinstance(obj, list) or (isinstance(obj, dict) and obj.get("error")):
            raise error_from_body(obj)
        if not isinstance(obj, dict):
            return []
        self.upstream_id = self.upstream_id or obj.get("responseId") or ""
        if obj.get("usageMetadata"):
            self.usage = usage_from(obj["usageMetadata"])
        out: list[ChunkChoice] = []
        for candidate in obj.get("candidates") or ():
            item = self._candidate(candidate)
            if item is not None:
                out.append(item)
        if not obj.get("candidates") and (obj.get("promptFeedback") or {}).get("blockReason"):
            self.finished = True
            reason = obj["promptFeedback"]["blockReason"]
            out.append(
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": "content_filter",
                    "native_finish_reason": reason,
                    "logprobs": None,
                }
            )
        return out

    def _candidate(self, candidate: Mapping[str, Any]) -> ChunkChoice | None:
        index = candidate.get("index", 0)
        parts = (candidate.get("content") or {}).get("parts") or []
        first_tool = self._tools.get(index, 0)
        next_detail, open_thought = self._details.get(index, (0, None))
        tr = PartsTranslation(parts, self.upstream_id, first_tool, next_detail, open_thought)
        self._tools[index] = first_tool + len(tr.calls)
        self._details[index] = (tr.next_detail, tr.open_thought)
        delta: dict[str, Any] = {}
        if tr.text:
            delta["content"] = "".join(tr.text)
        if tr.thoughts:
            delta["reasoning"] = "".join(tr.thoughts)
        if tr.details:
            delta["reasoning_details"] = tr.details
        if tr.calls:
            delta["tool_calls"] = tr.calls  # whole calls: Gemini never splits arguments
        if tr.images:
            delta["images"] = tr.images
        native = candidate.get("finishReason")
        if not delta and native is None:
            return None
        if delta and index not in self._started:
            self._started.add(index)
            delta["role"] = "assistant"
        if native is not None:
            self.finished = True
        item = {
            "index": index,
            "delta": delta,
            "finish_reason": finish_of(native, self._tools.get(index, 0) > 0),
            "native_finish_reason": native,
            "logprobs": None,
        }
        return cast(ChunkChoice, item)
