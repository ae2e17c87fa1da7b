"""Anthropic Messages: request shaping, thinking budgets, signatures, stream details, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.pricing import Usage
from proxy.providers import get_adapter
from proxy.providers.base import ProviderError
from proxy.sse import SSEEvent
from tests.proxy.providers.support import assemble, fixture_bytes, sent_body

adapter = get_adapter("anthropic")


def body(request: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return sent_body("anthropic", request, **kw)


def reasoning(effort: str | None = None, max_tokens: int | None = None, exclude: bool = False) -> dict[str, Any]:
    return {"enabled": True, "effort": effort, "max_tokens": max_tokens, "exclude": exclude}


TOOL_HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "18 C"}]},
    {"role": "user", "content": "Thanks, which is warmer?"},
]


def test_it_turns_tool_calls_into_tool_use_and_merges_results_into_one_user_turn() -> None:
    sent = body({"messages": TOOL_HISTORY})
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assistant = sent["messages"][1]["content"]
    assert assistant == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp": 21}'},
        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "18 C"}]},
        {"type": "text", "text": "Thanks, which is warmer?"},
    ]


def test_it_maps_images_and_keeps_cache_control_on_blocks_and_at_the_top_level() -> None:
    sent = body(
        {
            "messages": [
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Long manual", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare", "cache_control": {"type": "ephemeral"}},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {
                            "type": "file",
                            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                        },
                    ],
                },
            ],
            "cache_control": {"type": "ephemeral"},
        }
    )
    assert sent["system"] == [
        {"type": "text", "text": "Long manual", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "Compare", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
    ]
    assert sent["cache_control"] == {"type": "ephemeral"}


def test_it_refuses_audio_input_with_a_client_error() -> None:
    request = {
        "messages": [
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AAA=", "format": "wav"}}]}
        ]
    }
    with pytest.raises(ProviderError) as caught:
        body(request)
    assert (caught.value.status, caught.value.retryable) == (400, False)


def test_it_merges_consecutive_same_role_messages_and_prefixes_names() -> None:
    sent = body(
        {
            "messages": [
                {"role": "user", "content": "Hi", "name": "alice"},
                {"role": "user", "content": "Still there?"},
                {"role": "assistant", "content": "Sure thing   \n"},
            ]
        }
    )
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "alice: Hi"}, {"type": "text", "text": "Still there?"}]},
        # A trailing assistant message is a prefill; Anthropic refuses trailing whitespace there.
        {"role": "assistant", "content": [{"type": "text", "text": "Sure thing"}]},
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, None, {"type": "tool", "name": "get_weather"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_it_maps_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    request: dict[str, Any] = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
    }
    if choice is not None:
        request["tool_choice"] = choice
    if parallel is not None:
        request["parallel_tool_calls"] = parallel
    sent = body(request)
    assert sent["tool_choice"] == expected
    assert sent["tools"] == [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]


def test_it_sends_stop_sequences_user_and_clamps_temperature_to_claudes_range() -> None:
    sent = body(
        {"messages": [{"role": "user", "content": "x"}], "stop": "END", "user": "u-42", "temperature": 1.7, "top_k": 5}
    )
    assert sent["stop_sequences"] == ["END"]
    assert sent["metadata"] == {"user_id": "u-42"}
    assert (sent["temperature"], sent["top_k"]) == (1.0, 5)


@pytest.mark.parametrize(
    ("max_tokens", "rsn", "expected_thinking", "expected_max"),
    [
        (None, reasoning("medium"), {"type": "enabled", "budget_tokens": 8192}, 16384),
        (None, reasoning(max_tokens=2000), {"type": "enabled", "budget_tokens": 2000}, 6096),
        (None, reasoning(max_tokens=500), {"type": "enabled", "budget_tokens": 1024}, 5120),
        (4000, reasoning("low"), {"type": "enabled", "budget_tokens": 1024}, 4000),
        (3000, reasoning(max_tokens=5000), {"type": "enabled", "budget_tokens": 2999}, 3000),
        (800, reasoning("high"), None, 800),
        (None, {"enabled": False, "effort": None, "max_tokens": None, "exclude": False}, None, 4096),
        (None, reasoning("none"), None, 4096),
    ],
)
def test_it_turns_reasoning_into_a_thinking_budget_within_anthropics_limits(
    max_tokens: int | None, rsn: dict[str, Any], expected_thinking: dict[str, Any] | None, expected_max: int
) -> None:
    request: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "reasoning": rsn}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    sent = body(request)
    assert sent.get("thinking") == expected_thinking
    assert sent["max_tokens"] == expected_max


def test_it_drops_sampling_changes_thinking_refuses() -> None:
    sent = body(
        {
            "messages": [{"role": "user", "content": "x"}],
            "reasoning": reasoning("high"),
            "temperature": 0.2,
            "top_k": 3,
            "top_p": 0.5,
        }
    )
    assert "thinking" in sent
    assert not {"temperature", "top_k", "top_p"} & sent.keys()


def test_it_prefers_a_forced_tool_over_thinking() -> None:
    sent = body(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "required",
            "reasoning": reasoning("high"),
        }
    )
    assert "thinking" not in sent
    assert sent["tool_choice"] == {"type": "any"}


def test_it_returns_thinking_as_reasoning_details_and_takes_them_back_verbatim() -> None:
    parsed = adapter.parse_response(fixture_bytes("anthropic", "reasoning.response.json"))
    message = parsed.choices[0]["message"]
    [detail] = message["reasoning_details"]
    assert detail["type"] == "reasoning.text"
    assert detail["format"] == "anthropic-claude-v1"
    assert detail["signature"].startswith("EqQBCgIYAhIM")
    history = [{"role": "user", "content": "What is 27 * 453?"}, message, {"role": "user", "content": "And times 2?"}]
    sent = body({"messages": history})
    assert sent["messages"][1]["content"] == [
        {"type": "thinking", "thinking": detail["text"], "signature": detail["signature"]},
        {"type": "text", "text": "27 \u00d7 453 = 12231."},
    ]


def test_it_rebuilds_thinking_blocks_from_streamed_fragments() -> None:
    parser = adapter.stream_parser()
    result = assemble([])
    for line in fixture_bytes("anthropic", "reasoning.stream.sse").split(b"\n\n"):
        data = [ln[6:] for ln in line.split(b"\n") if ln.startswith(b"data: ")]
        if data:
            assemble(parser.feed(SSEEvent(None, data[0].decode())), result)  # type: ignore[arg-type]
    assistant = {"role": "assistant", "content": result.content, "reasoning_details": result.reasoning_details}
    sent = body({"messages": [{"role": "user", "content": "q"}, assistant, {"role": "user", "content": "more"}]})
    thinking = sent["messages"][1]["content"][0]
    assert thinking["type"] == "thinking"
    assert thinking["thinking"] == "27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231."
    assert thinking["signature"].startswith("EqQBCgIYAhIM")


def test_it_round_trips_redacted_thinking_and_ignores_other_providers_reasoning() -> None:
    content = [
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Done."},
    ]
    raw = {"id": "msg_1", "type": "message", "role": "assistant", "content": content, "stop_reason": "end_turn"}
    message = adapter.parse_response(json.dumps(raw).encode()).choices[0]["message"]
    assert message["reasoning_details"][0]["type"] == "reasoning.encrypted"
    assert message["reasoning"] is None
    message["reasoning_details"].append({"type": "reasoning.encrypted", "data": "xyz", "format": "google-gemini-v1"})
    sent = body({"messages": [{"role": "user", "content": "q"}, message]})
    assert sent["messages"][1]["content"] == [
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Done."},
    ]


def test_it_maps_tool_ids_anthropic_would_refuse_the_same_way_in_use_and_result() -> None:
    history = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "functions.get_weather:0",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"},
    ]
    sent = body({"messages": history})
    use = sent["messages"][1]["content"][0]
    result = sent["messages"][2]["content"][0]
    assert use["id"] == result["tool_use_id"] == "functions_get_weather_0"
    assert use["input"] == {}


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_it_normalizes_stop_reasons(stop_reason: str, expected: str) -> None:
    raw = {"id": "m", "type": "message", "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    choice = adapter.parse_response(json.dumps(raw).encode()).choices[0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (expected, stop_reason)


def test_it_takes_cumulative_usage_from_message_delta_when_the_api_repeats_input_counts() -> None:
    parser = adapter.stream_parser()
    start = {"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "output_tokens": 1}}}
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 64},
    }
    assert parser.feed(SSEEvent("message_start", json.dumps(start))) == []
    [finish] = parser.feed(SSEEvent("message_delta", json.dumps(delta)))
    assert (finish["finish_reason"], finish["native_finish_reason"]) == ("length", "max_tokens")
    assert parser.usage == Usage(prompt_tokens=100, completion_tokens=64, cached_tokens=90)
    assert parser.finished is False
    assert parser.feed(SSEEvent("message_stop", '{"type":"message_stop"}')) == []
    assert parser.finished is True


@pytest.mark.parametrize(
    ("status", "error_type", "message", "expected"),
    [
        (401, "authentication_error", "invalid x-api-key", (502, True, "provider_unavailable")),
        (403, "permission_error", "no access", (502, True, "provider_unavailable")),
        (413, "request_too_large", "Request exceeds the maximum size", (413, False, "payload_too_large")),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            (400, False, "context_length_exceeded"),
        ),
        (500, "api_error", "Internal server error", (502, True, "provider_unavailable")),
        (504, "timeout_error", "Request timed out", (408, True, "timeout")),
    ],
)
def test_it_classifies_errors_for_fail_over(
    status: int, error_type: str, message: str, expected: tuple[Any, ...]
) -> None:
    raw = {"type": "error", "error": {"type": error_type, "message": message}}
    error = adapter.map_error(status, {}, json.dumps(raw).encode())
    assert (error.status, error.retryable, error.error_type) == expected
    assert error.message == message


def test_it_always_sends_tool_input_as_an_object() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": '{"unterminated": '}},
    ]
    history = [{"role": "user", "content": "x"}, {"role": "assistant", "content": None, "tool_calls": calls}]
    blocks = body({"messages": history})["messages"][1]["content"]
    assert [b["input"] for b in blocks] == [{"value": [1, 2]}, {"_raw_arguments": '{"unterminated": '}]
