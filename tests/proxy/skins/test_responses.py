"""The OpenAI Responses skin, pure: request translation, response and stream rendering, recorded fixtures."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from proxy.gateway.validate import parse_request
from proxy.skins import ResponsesSkin, SkinRequestError
from proxy.skins.responses import ResponsesStream
from proxy.skins.responses_request import to_chat
from tests.proxy.providers.support import sent_body
from tests.proxy.skins.support import (
    ANTHROPIC_SIG,
    CTX,
    USAGE,
    render_stream,
    request,
    sse_events,
    upstream_choices,
    upstream_message,
)


def core_body(body: dict[str, Any]) -> dict[str, Any]:
    return parse_request(orjson.dumps(to_chat(body))).body


def test_a_codex_request_becomes_one_chat_request() -> None:
    chat = to_chat(request("codex.request.json"))
    assert chat["model"] == "openai/gpt-5-codex" and chat["stream"] is True
    assert chat["max_tokens"] == 4000 and chat["parallel_tool_calls"] is False
    assert chat["reasoning"] == {"effort": "medium"}
    assert chat["verbosity"] == "low"
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert [t["function"]["name"] for t in chat["tools"]] == ["shell"]  # hosted tools have no equivalent
    assert chat["tool_choice"] == "auto"
    system, developer, user, assistant, tool, assistant2, user2 = chat["messages"]
    assert system == {"role": "system", "content": "You are Codex, a coding agent."}
    assert developer == {"role": "developer", "content": "<environment_context/>"}
    assert user["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.png", "detail": "auto"},
    }
    assert assistant["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": '{"command":["ls"]}'}}
    ]
    assert [d["type"] for d in assistant["reasoning_details"]] == ["reasoning.summary", "reasoning.encrypted"]
    assert assistant["reasoning_details"][1]["data"] == "gAAAAenc"
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "README.md"}
    assert assistant2 == {"role": "assistant", "content": "There is a README."}
    assert user2 == {"role": "user", "content": "thanks"}
    # And the core accepts it as it is.
    assert core_body(request("codex.request.json"))["messages"]


@pytest.mark.parametrize("extra", [{"store": True}, {"previous_response_id": "resp_1"}, {"conversation": "conv_1"}])
def test_stateful_requests_are_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(SkinRequestError) as exc:
        to_chat({"model": "m", "input": "hi", **extra})
    assert "stateless" in exc.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": 3}, "input"),
        ({"input": [{"type": "mystery"}]}, "mystery"),
        ({"input": [{"role": "tool", "content": "x"}]}, "role"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "call_id"),
        ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format"),
        ({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_bad_requests_are_refused_with_a_reason(body: dict[str, Any], message: str) -> None:
    with pytest.raises(SkinRequestError) as exc:
        to_chat(body)
    assert message in exc.value.message


def _skin(body: dict[str, Any] | None = None) -> ResponsesSkin:
    skin = ResponsesSkin()
    skin.translate(body or {"model": "m", "input": "hi", "instructions": "Be brief.", "metadata": {"k": "v"}})
    return skin


def test_an_answer_renders_as_a_response_with_reasoning_message_and_usage() -> None:
    body = _skin().render_body(CTX, upstream_message("anthropic", "reasoning.response.json"), USAGE)
    assert body["object"] == "response" and body["status"] == "completed" and body["id"] == CTX.generation_id
    assert body["instructions"] == "Be brief." and body["metadata"] == {"k": "v"} and body["store"] is False
    reasoning, message = body["output"]
    assert reasoning["type"] == "reasoning" and reasoning["summary"][0]["text"]
    assert message["type"] == "message" and message["content"][0]["type"] == "output_text"
    usage = body["usage"]
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (120, 30, 150)
    assert usage["input_tokens_details"] == {"cached_tokens": 100}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 12}
    assert usage["cost"] == USAGE["cost"]


def test_a_length_stop_is_an_incomplete_response() -> None:
    choices = [{"index": 0, "message": {"role": "assistant", "content": "Hel"}, "finish_reason": "length"}]
    body = _skin().render_body(CTX, choices, USAGE)
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_reasoning_passed_back_reaches_an_anthropic_upstream_with_its_signature() -> None:
    first = _skin().render_body(CTX, upstream_message("anthropic", "reasoning.response.json"), USAGE)
    body = {
        "model": "m",
        "input": [{"role": "user", "content": "hi"}, *first["output"], {"role": "user", "content": "more"}],
    }
    sent = sent_body("anthropic", core_body(body))
    thinking = sent["messages"][1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"] == ANTHROPIC_SIG


def test_tool_calls_render_as_function_call_items() -> None:
    body = _skin().render_body(CTX, upstream_message("gemini", "tools_nonstream.response.json"), USAGE)
    calls = [item for item in body["output"] if item["type"] == "function_call"]
    assert calls and all(item["call_id"] and item["name"] and json.loads(item["arguments"]) for item in calls)


def _check_sequence(events: list[tuple[str, dict[str, Any]]]) -> None:
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert [n for n, _ in events[:2]] == ["response.created", "response.in_progress"]
    added = [p["output_index"] for n, p in events if n == "response.output_item.added"]
    done = [p["output_index"] for n, p in events if n == "response.output_item.done"]
    assert added == done == list(range(len(added)))
    for name, payload in events:
        assert payload["type"] == name


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_a_streamed_answer_matches_the_non_streamed_rendering(kind: str) -> None:
    skin = _skin()
    events = render_stream(skin.stream_renderer(CTX), upstream_choices(kind, "tools_stream_multi.stream.sse"))
    _check_sequence(events)
    name, final = events[-1]
    assert name == "response.completed"
    calls = [item for item in final["response"]["output"] if item["type"] == "function_call"]
    assert len(calls) == 2
    streamed_args = {}
    for event_name, payload in events:
        if event_name == "response.function_call_arguments.delta":
            streamed_args[payload["item_id"]] = streamed_args.get(payload["item_id"], "") + payload["delta"]
    assert {c["id"]: c["arguments"] for c in calls} == streamed_args
    assert all(json.loads(c["arguments"]) for c in calls)


def test_a_reasoning_stream_emits_summary_events_then_text() -> None:
    events = render_stream(_skin().stream_renderer(CTX), upstream_choices("anthropic", "reasoning.stream.sse"))
    _check_sequence(events)
    names = [n for n, _ in events]
    assert names.index("response.reasoning_summary_part.added") < names.index("response.reasoning_summary_text.delta")
    assert names.index("response.reasoning_summary_text.done") < names.index("response.output_text.delta")
    output = events[-1][1]["response"]["output"]
    assert [item["type"] for item in output] == ["reasoning", "message"]
    assert output[0]["encrypted_content"]  # the signature travels with it
    text = "".join(p["delta"] for n, p in events if n == "response.output_text.delta")
    assert output[1]["content"][0]["text"] == text


def test_a_failed_stream_ends_with_response_failed() -> None:
    renderer = ResponsesStream(_skin(), CTX)
    raw = renderer.choices([{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}])
    raw += renderer.error({"code": 502, "message": "The provider stopped responding mid-stream"}, USAGE)
    events = sse_events(raw)
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    name, payload = events[-1]
    assert name == "response.failed"
    assert payload["response"]["status"] == "failed"
    assert payload["response"]["error"] == {
        "code": "server_error",
        "message": "The provider stopped responding mid-stream",
    }


def test_errors_use_the_responses_shape_with_a_top_level_error_type() -> None:
    body = _skin().render_error(429, "slow down", {"error_type": "rate_limit_exceeded"})
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["message"] == "slow down"
    assert body["error_type"] == "rate_limit_exceeded"
