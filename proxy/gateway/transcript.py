"""What the client received, per choice, kept only for organizations that opted into prompt logging.

A non-streaming answer is its choices as sent; a stream is reassembled from its deltas (content,
reasoning and tool-call fragments by index). Built only when logging is on, so the hot path of every
other organization does not even allocate one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class Transcript:
    def __init__(self, choices: Sequence[Mapping[str, Any]] = ()) -> None:
        self._fixed = [dict(c) for c in choices]
        self._streamed: dict[int, dict[str, Any]] = {}

    def feed(self, choices: Sequence[Mapping[str, Any]]) -> None:
        """Add one streamed chunk's choices (their `delta`s) to the assembled messages."""
        for choice in choices:
            index = choice.get("index", 0)
            slot = self._streamed.setdefault(index if isinstance(index, int) else 0, {"tools": {}})
            delta = choice.get("delta")
            if isinstance(delta, Mapping):
                for part in ("role", "content", "reasoning", "refusal"):
                    value = delta.get(part)
                    if isinstance(value, str) and value:
                        slot[part] = value if part == "role" else slot.get(part, "") + value
                for fragment in delta.get("tool_calls") or ():
                    if isinstance(fragment, Mapping):
                        _add_tool_fragment(slot["tools"], fragment)
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def choices(self) -> list[dict[str, Any]]:
        if self._fixed:
            return self._fixed
        out = []
        for index, slot in sorted(self._streamed.items()):
            message: dict[str, Any] = {"role": slot.get("role", "assistant"), "content": slot.get("content", "")}
            for part in ("reasoning", "refusal"):
                if part in slot:
                    message[part] = slot[part]
            if slot["tools"]:
                message["tool_calls"] = [call for _, call in sorted(slot["tools"].items())]
            out.append({"index": index, "message": message, "finish_reason": slot.get("finish_reason")})
        return out


def _add_tool_fragment(tools: dict[int, dict[str, Any]], fragment: Mapping[str, Any]) -> None:
    index = fragment.get("index", len(tools))
    key = index if isinstance(index, int) else len(tools)
    call = tools.setdefault(key, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
    if isinstance(fragment.get("id"), str) and not call["id"]:
        call["id"] = fragment["id"]
    function = fragment.get("function")
    if isinstance(function, Mapping):
        if isinstance(function.get("name"), str) and not call["function"]["name"]:
            call["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]
