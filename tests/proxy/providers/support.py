"""Fixture loading and stream assembly shared by the adapter tests (pure: no database, no network)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proxy.providers import get_adapter
from proxy.providers.base import StreamParser, Target
from proxy.sse import SSEDecoder

FIXTURES = Path(__file__).parent / "fixtures"
KINDS = ("openai", "anthropic", "gemini")

TARGETS = {
    "openai": Target(
        base_url="https://api.openai.com/v1", api_key="sk-test", upstream_model="gpt-4o-mini", provider_slug="openai"
    ),
    "anthropic": Target(
        base_url="https://api.anthropic.com",
        api_key="sk-ant-test",
        upstream_model="claude-sonnet-4-5",
        provider_slug="anthropic",
    ),
    "gemini": Target(
        base_url="https://generativelanguage.googleapis.com",
        api_key="AIza-test",
        upstream_model="gemini-2.5-flash",
        provider_slug="google-ai-studio",
    ),
}


def fixture_bytes(kind: str, name: str) -> bytes:
    return (FIXTURES / kind / name).read_bytes()


def fixture_json(kind: str, name: str) -> Any:
    return json.loads(fixture_bytes(kind, name))


def sent_body(kind: str, request: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    call = get_adapter(kind).build_request(request, TARGETS[kind], stream=stream)  # type: ignore[arg-type]
    return json.loads(call.body)


@dataclass
class Assembled:
    """What a client accumulating the chunk choices would end up with."""

    content: str = ""
    reasoning: str = ""
    reasoning_details: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    roles: list[str] = field(default_factory=list)
    items: int = 0

    def calls(self) -> list[dict[str, Any]]:
        return [self.tool_calls[i] for i in sorted(self.tool_calls)]


def assemble(items: list[dict[str, Any]], into: Assembled | None = None) -> Assembled:
    out = into or Assembled()
    for item in items:
        out.items += 1
        delta = item["delta"]
        if "role" in delta:
            out.roles.append(delta["role"])
        out.content += delta.get("content") or ""
        out.reasoning += delta.get("reasoning") or ""
        out.reasoning_details.extend(delta.get("reasoning_details") or [])
        for fragment in delta.get("tool_calls") or []:
            call = out.tool_calls.setdefault(fragment["index"], {"id": None, "name": None, "arguments": ""})
            if fragment.get("id"):
                call["id"] = fragment["id"]
            fn = fragment.get("function") or {}
            if fn.get("name"):
                call["name"] = fn["name"]
            call["arguments"] += fn.get("arguments") or ""
        if item["finish_reason"] is not None:
            out.finish_reason = item["finish_reason"]
            out.native_finish_reason = item["native_finish_reason"]
    return out


def replay(kind: str, name: str, *, chunk_size: int = 37) -> tuple[StreamParser, Assembled]:
    """Feed a recorded stream through the decoder in awkward TCP-sized pieces, then the parser."""
    raw = fixture_bytes(kind, name)
    decoder = SSEDecoder()
    parser = get_adapter(kind).stream_parser()
    result = Assembled()
    for start in range(0, len(raw), chunk_size):
        for event in decoder.feed(raw[start : start + chunk_size]):
            assemble(parser.feed(event), result)  # type: ignore[arg-type]
    for event in decoder.flush():
        assemble(parser.feed(event), result)  # type: ignore[arg-type]
    return parser, result
