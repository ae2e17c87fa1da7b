"""Is a delivered tool call usable? (Tool-call quality per endpoint, docs/routing.md "Exacto".)

A response that ended in tool calls is *bad* when any call names a tool the request did not
offer, has arguments that are not a JSON object, or arguments that fail the tool's `parameters`
schema (proxy/plugins/schema.py). Pure: the gateway records the verdict in endpoint health.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from proxy.plugins.schema import schema_errors


def _offered(tools: object) -> dict[str, Any]:
    """Tool name -> its parameters schema, from the request's `tools`."""
    out: dict[str, Any] = {}
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            out[function["name"]] = function.get("parameters")
    return out


def tool_call_problem(call: Mapping[str, Any], offered: Mapping[str, Any]) -> str | None:
    """Why one tool call is unusable, or None."""
    function = call.get("function")
    if not isinstance(function, Mapping):
        return "no function"
    name = function.get("name")
    if not isinstance(name, str) or name not in offered:
        return f"unknown tool {name!r}"
    raw = function.get("arguments")
    if isinstance(raw, Mapping):
        arguments: Any = raw
    else:
        try:
            arguments = orjson.loads(raw or "{}")
        except (orjson.JSONDecodeError, TypeError):
            return "arguments are not valid JSON"
    if not isinstance(arguments, dict):
        return "arguments are not a JSON object"
    errors = schema_errors(arguments, offered[name])
    return f"arguments fail the schema: {errors[0]}" if errors else None


def tool_calls_ok(tools: object, calls: Sequence[Mapping[str, Any]] | None) -> bool | None:
    """True: every call usable; False: at least one bad; None: the response made no tool call."""
    if not calls:
        return None
    offered = _offered(tools)
    return all(tool_call_problem(call, offered) is None for call in calls)


class ToolCallCollector:
    """Reassembles streamed tool calls (`delta.tool_calls` fragments by index) for the same verdict."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def feed(self, choices: Sequence[Mapping[str, Any]]) -> None:
        for choice in choices:
            if choice.get("index", 0) != 0:
                continue  # the first choice is what the verdict is about (as for non-streaming)
            delta = choice.get("delta")
            for fragment in (delta.get("tool_calls") if isinstance(delta, Mapping) else None) or ():
                if not isinstance(fragment, Mapping):
                    continue
                index = fragment.get("index", len(self._calls))
                key = index if isinstance(index, int) else len(self._calls)
                call = self._calls.setdefault(key, {"name": "", "arguments": ""})
                function = fragment.get("function")
                if isinstance(function, Mapping):
                    if isinstance(function.get("name"), str):
                        call["name"] = call["name"] or function["name"]
                    if isinstance(function.get("arguments"), str):
                        call["arguments"] += function["arguments"]

    def calls(self) -> tuple[dict[str, Any], ...]:
        return tuple(
            {"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(self._calls.items())
        )
