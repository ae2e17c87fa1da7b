"""OpenAI-style hosts send chain-of-thought as `reasoning` / `reasoning_content` only; clients (Cline,
Roo Code, the AI SDK) read `reasoning_details`, so the adapter builds it, and keeps a host's own."""

from __future__ import annotations

import json
from typing import Any

from proxy.providers import get_adapter
from proxy.providers._common import merge_details
from proxy.providers.base import Target
from proxy.sse import SSEEvent
from tests.proxy.providers.support import assemble

adapter = get_adapter("openai")


def _response(message: dict[str, Any]) -> bytes:
    return json.dumps({"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}).encode()


def test_a_message_with_reasoning_content_gets_reasoning_details() -> None:
    parsed = adapter.parse_response(_response({"role": "assistant", "content": "4", "reasoning_content": "2+2"}))
    message = parsed.choices[0]["message"]
    assert message["reasoning"] == "2+2"
    assert message["reasoning_details"] == [{"type": "reasoning.text", "text": "2+2", "format": "unknown", "index": 0}]


def test_a_message_without_reasoning_gets_no_details() -> None:
    message = adapter.parse_response(_response({"role": "assistant", "content": "4"})).choices[0]["message"]
    assert message["reasoning"] is None and "reasoning_details" not in message


def test_a_hosts_own_details_are_kept_verbatim() -> None:
    own = [{"type": "reasoning.encrypted", "data": "opaque", "format": "openai-responses-v1", "index": 0}]
    message = adapter.parse_response(
        _response({"role": "assistant", "content": "4", "reasoning": "r", "reasoning_details": own})
    ).choices[0]["message"]
    assert message["reasoning_details"] == own


def test_streamed_reasoning_deltas_carry_details_that_join_into_one_block() -> None:
    parser = adapter.stream_parser()
    chunks = [
        {
            "id": "c",
            "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "Let "}, "finish_reason": None}],
        },
        {"id": "c", "choices": [{"index": 0, "delta": {"reasoning_content": "me think"}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "4"}, "finish_reason": "stop"}]},
    ]
    items = [item for chunk in chunks for item in parser.feed(SSEEvent(None, json.dumps(chunk)))]
    assert items[0]["delta"]["reasoning_details"] == [
        {"type": "reasoning.text", "text": "Let ", "format": "unknown", "index": 0}
    ]
    assert "reasoning_details" not in items[2]["delta"]  # content deltas carry none
    result = assemble(items)  # type: ignore[arg-type]
    assert merge_details(result.reasoning_details) == [
        {"type": "reasoning.text", "text": "Let me think", "format": "unknown", "index": 0}
    ]


def test_details_passed_back_do_not_reach_an_openai_style_host() -> None:
    """Other providers' signatures mean nothing to these hosts (and strict ones refuse the field)."""
    history = {
        "role": "assistant",
        "content": "4",
        "reasoning": "2+2",
        "reasoning_details": [{"type": "reasoning.text", "text": "2+2", "signature": "sig", "format": "unknown"}],
    }
    request: dict[str, Any] = {"messages": [{"role": "user", "content": "2+2?"}, history]}
    for slug in ("openai", "deepinfra"):
        call = adapter.build_request(
            request,  # type: ignore[arg-type]
            Target(base_url="http://127.0.0.1:9/v1", api_key="k", upstream_model="m", provider_slug=slug),
            stream=False,
        )
        sent = json.loads(call.body)["messages"][1]
        assert sent == {"role": "assistant", "content": "4"}
