"""Helpers for the skin tests: replay a recorded upstream stream through its parser and a skin renderer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from proxy.providers import get_adapter
from proxy.skins.base import RenderContext, StreamRenderer
from proxy.sse import SSEDecoder
from tests.proxy.providers.support import fixture_bytes, fixture_json

FIXTURES = Path(__file__).parent / "fixtures"
# The thinking signature in tests/proxy/providers/fixtures/anthropic/reasoning.*
ANTHROPIC_SIG = (
    "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds4UXHRGwqp2xMIiyExZ2jcWvSS3DPIPrp2pUOi7bmHtU0L6T0nKESc20"
    "CtI8d6yB3Hx6/SKhXqSsaWQE"
)
CTX = RenderContext(
    generation_id="gen-1-abc",
    created=1700000000,
    model="anthropic/claude-sonnet-4.5",
    provider_name="Anthropic",
    prompt_tokens=40,
)
USAGE: dict[str, Any] = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 5, "audio_tokens": 0, "video_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12, "image_tokens": 0, "audio_tokens": 0},
    "cost": 0.00012,
    "is_byok": False,
    "cost_details": {"upstream_inference_cost": None},
}


def request(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def upstream_choices(kind: str, name: str) -> list[list[dict[str, Any]]]:
    """The chat chunk choices the core produces from a recorded upstream stream, batch by batch."""
    parser = get_adapter(kind).stream_parser()
    decoder = SSEDecoder()
    batches = []
    for event in [*decoder.feed(fixture_bytes(kind, name)), *decoder.flush()]:
        choices = parser.feed(event)
        if choices:
            batches.append([dict(c) for c in choices])
    return batches


def upstream_message(kind: str, name: str) -> list[dict[str, Any]]:
    """The chat choices the core produces from a recorded non-streamed upstream answer."""
    raw = json.dumps(fixture_json(kind, name)).encode()
    return get_adapter(kind).parse_response(raw).choices


def render_stream(renderer: StreamRenderer, batches: list[list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    raw = b"".join(renderer.choices(b) for b in batches) + renderer.final(USAGE)
    return sse_events(raw)


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events
