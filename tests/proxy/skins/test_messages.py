"""The Anthropic Messages skin, pure: request translation, answer and stream rendering, recorded fixtures."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from proxy.gateway.validate import parse_request
from proxy.skins import MessagesSkin, SkinRequestError
from proxy.skins.messages import MessagesStream, anthropic_usage
from proxy.skins.messages_request import to_chat
from tests.proxy.providers.support import sent_body
from tests.proxy.skins.support import (
    ANTHROPIC_SIG,
    CTX,
    USAGE,
    render_stream,
    request,
    upstream_choices,
    upstream_message,
)


def core_body(body: dict[str, Any]) -> dict[str, Any]:
    """What the gateway's admission makes of a skin request: translated, then chat-validated."""
    return parse_request(orjson.dumps(to_chat(body))).body


def test_a_claude_code_request_becomes_one_chat_request() -> None:
    chat = to_chat(request("claude_code.request.json"))
    assert chat["model"] == "anthropic/claude-sonnet-4.5"
    assert chat["max_tokens"] == 32000 and chat["stream"] is True
    assert chat["user"] == "user_abc_account__session_123"
    assert chat["reasoning"] == {"max_tokens": 2048}
    assert [t["function"]["name"] for t in chat["tools"]] == ["Bash"]  # the server tool has no chat equivalent
    assert chat["tool_choice"] == "auto" and chat["parallel_tool_calls"] is False
    system, user, assistant, tool, user2 = chat["messages"]
    assert system["role"] == "system" and system["content"][1]["cache_control"] == {"type": "ephemeral"}
    assert user == {"role": "user", "content": "List the files"}
    assert assistant["content"] == "Running ls."
    assert assistant["tool_calls"] == [
        {"id": "toolu_01A", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}
    ]
    assert [d["type"] for d in assistant["reasoning_details"]] == ["reasoning.text", "reasoning.encrypted"]
    assert tool == {"role": "tool", "tool_call_id": "toolu_01A", "content": "README.md\nsrc"}
    assert user2["content"][0] == {
        "type": "text",
        "text": "Now read the README",
        "cache_control": {"type": "ephemeral"},
    }
    assert user2["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def test_an_anthropic_upstream_gets_thinking_signatures_and_cache_control_unchanged() -> None:
    sent = sent_body("anthropic", core_body(request("claude_code.request.json")))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["system"][1]["cache_control"] == {"type": "ephemeral"}
    assistant = sent["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "I should run ls.", "signature": "EqQBsig-anthropic=="}
    assert assistant[1] == {"type": "redacted_thinking", "data": "EmwKAhgBredacted=="}
    assert assistant[3]["type"] == "tool_use" and assistant[3]["input"] == {"command": "ls"}
    result = sent["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01A"
    assert sent["metadata"] == {"user_id": "user_abc_account__session_123"}


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_other_upstream_families_get_the_same_conversation_in_their_dialect(kind: str) -> None:
    sent = json.dumps(sent_body(kind, core_body(request("claude_code.request.json"))))
    assert "README.md" in sent and "Bash" in sent and "List the files" in sent
    # Anthropic's signatures mean nothing to another family and are not forwarded.
    assert "EqQBsig-anthropic" not in sent


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}]}, "tool_use"),
        ({"messages": [{"role": "user", "content": "x"}], "thinking": {"type": "enabled"}}, "budget_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "system": 3}, "system"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(body: dict[str, Any], message: str) -> None:
    with pytest.raises(SkinRequestError) as exc:
        to_chat(body)
    assert message in exc.value.message


def test_an_anthropic_answer_renders_as_a_message_with_thinking_text_and_usage() -> None:
    choices = upstream_message("anthropic", "reasoning.response.json")
    body = MessagesSkin().render_body(CTX, choices, USAGE)
    assert body["type"] == "message" and body["id"] == CTX.generation_id
    thinking, text = body["content"]
    assert thinking["type"] == "thinking" and thinking["signature"] == ANTHROPIC_SIG
    assert text["type"] == "text" and text["text"]
    assert body["stop_reason"] == "end_turn"
    # Chat counts cache reads and writes inside prompt_tokens; Anthropic does not.
    assert body["usage"]["input_tokens"] == 15
    assert (body["usage"]["cache_read_input_tokens"], body["usage"]["cache_creation_input_tokens"]) == (100, 5)
    assert body["usage"]["output_tokens"] == 30 and body["usage"]["cost"] == USAGE["cost"]


def test_a_tool_answer_renders_tool_use_blocks_with_object_input() -> None:
    choices = upstream_message("openai", "tools_nonstream.response.json")
    body = MessagesSkin().render_body(CTX, choices, USAGE)
    uses = [b for b in body["content"] if b["type"] == "tool_use"]
    assert uses and all(isinstance(b["input"], dict) and b["id"] and b["name"] for b in uses)
    assert body["stop_reason"] == "tool_use"


def _check_order(events: list[tuple[str, dict[str, Any]]]) -> None:
    names = [n for n, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    open_index = None
    for name, payload in events:
        assert payload["type"] == name
        if name == "content_block_start":
            assert open_index is None
            open_index = payload["index"]
        elif name == "content_block_stop":
            assert payload["index"] == open_index
            open_index = None
    assert open_index is None


def _blocks(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """What the anthropic SDK accumulates from the events."""
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for name, payload in events:
        if name == "content_block_start":
            blocks.append(dict(payload["content_block"]))
        elif name == "content_block_delta":
            block, delta = blocks[payload["index"]], payload["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial[payload["index"]] = partial.get(payload["index"], "") + delta["partial_json"]
    for index, text in partial.items():
        blocks[index]["input"] = json.loads(text)
    return blocks


def test_an_anthropic_thinking_stream_keeps_its_blocks_and_signature() -> None:
    events = render_stream(MessagesStream(CTX), upstream_choices("anthropic", "reasoning.stream.sse"))
    _check_order(events)
    blocks = _blocks(events)
    assert [b["type"] for b in blocks] == ["thinking", "text"]
    assert blocks[0]["signature"] == ANTHROPIC_SIG and blocks[0]["thinking"]
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"] == anthropic_usage(USAGE)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_streamed_parallel_tool_calls_become_tool_use_blocks(kind: str) -> None:
    events = render_stream(MessagesStream(CTX), upstream_choices(kind, "tools_stream_multi.stream.sse"))
    _check_order(events)
    uses = [b for b in _blocks(events) if b["type"] == "tool_use"]
    assert len(uses) == 2
    assert all(isinstance(b["input"], dict) and b["input"] for b in uses)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_gemini_thought_signatures_round_trip_through_thinking_blocks() -> None:
    events = render_stream(MessagesStream(CTX), upstream_choices("gemini", "tools_stream_multi.stream.sse"))
    blocks = _blocks(events)
    # The Claude client passes every block back verbatim on the next turn.
    body = {
        "model": "google/gemini-2.5-flash",
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": blocks},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": b["id"], "content": "sunny"}
                    for b in blocks
                    if b["type"] == "tool_use"
                ],
            },
        ],
    }
    sent = json.dumps(sent_body("gemini", core_body(body)))
    assert "CiQB0e2Kb6Wm3nq4TyfXq2vQm1cMv5GfYV0Jx3RZbtb8Ck7BKr8=" in sent


def test_a_failed_stream_ends_with_an_error_event() -> None:
    renderer = MessagesStream(CTX)
    renderer.choices([{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}])
    raw = renderer.error({"code": 502, "message": "The provider stopped responding mid-stream"}, None)
    assert raw.startswith(b"event: error\n")
    payload = json.loads(raw.split(b"data: ", 1)[1])
    assert payload["type"] == "error" and payload["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (401, "authentication_error"), (402, "billing_error"), (429, "rate_limit_error")],
)
def test_errors_use_anthropics_types(status: int, kind: str) -> None:
    body = MessagesSkin().render_error(status, "nope", {"error_type": "x"})
    assert body == {"type": "error", "error": {"type": kind, "message": "nope", "error_type": "x"}, "request_id": None}
