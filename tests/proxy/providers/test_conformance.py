"""The conformance matrix: every adapter runs through the same capability cases (house rule 7).

Each case has one canonical (OpenAI-shaped) request; each adapter has, per case, the native
request it must send and the native response / stream / error the provider documents. The
expectations on the translated-back results are the same for every adapter.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.pricing import Usage
from proxy.providers import get_adapter, hide_reasoning
from proxy.providers.base import ProviderError
from proxy.sse import SSEDecoder
from tests.proxy.providers.support import KINDS, TARGETS, fixture_bytes, fixture_json, replay, sent_body

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER_SCHEMA},
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Local time in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
]
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}

REQUESTS: dict[str, dict[str, Any]] = {
    "plain_text": {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64, "temperature": 0.5},
    "system_prompt": {
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "developer", "content": "Answer in French."},
            {"role": "user", "content": "Say hello."},
        ]
    },
    "stream_text": {"messages": [{"role": "user", "content": "Say hello."}], "stream": True},
    "tools_nonstream": {
        "messages": [{"role": "user", "content": "What's the weather and the time in Paris?"}],
        "tools": TOOLS,
        "tool_choice": "auto",
    },
    "json_mode": {
        "messages": [
            {"role": "user", "content": "Give me a JSON object with a name and an age for a famous mathematician."}
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": PERSON_SCHEMA},
        },
    },
    "reasoning": {
        "messages": [{"role": "user", "content": "What is 27 * 453?"}],
        "max_tokens": 10000,
        "reasoning": {"enabled": True, "effort": "high", "max_tokens": None, "exclude": False},
    },
}
STREAMED = {"stream_text"}
HELLO = "Hello! How can I help you today?"
EXPECTED_CALLS = [("get_weather", {"city": "Paris", "unit": "celsius"}), ("get_time", {"city": "Paris"})]


@pytest.mark.parametrize("case", sorted(REQUESTS))
@pytest.mark.parametrize("kind", KINDS)
def test_it_sends_the_documented_native_request(kind: str, case: str) -> None:
    body = sent_body(kind, REQUESTS[case], stream=case in STREAMED)
    assert body == fixture_json(kind, f"{case}.request.json")


@pytest.mark.parametrize("kind", KINDS)
def test_it_authenticates_and_addresses_each_provider_its_own_way(kind: str) -> None:
    adapter = get_adapter(kind)
    plain = adapter.build_request(REQUESTS["plain_text"], TARGETS[kind], stream=False)  # type: ignore[arg-type]
    streamed = adapter.build_request(REQUESTS["plain_text"], TARGETS[kind], stream=True)  # type: ignore[arg-type]
    expected = {
        "openai": (
            "https://api.openai.com/v1/chat/completions",
            "https://api.openai.com/v1/chat/completions",
            ("Authorization", "Bearer sk-test"),
        ),
        "anthropic": (
            "https://api.anthropic.com/v1/messages",
            "https://api.anthropic.com/v1/messages",
            ("x-api-key", "sk-ant-test"),
        ),
        "gemini": (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent",
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            ("x-goog-api-key", "AIza-test"),
        ),
    }[kind]
    assert (plain.url, streamed.url) == expected[:2]
    header, value = expected[2]
    assert plain.headers[header] == value
    assert plain.headers.get("Content-Type", plain.headers.get("content-type")) == "application/json"


@pytest.mark.parametrize("kind", KINDS)
def test_it_parses_a_plain_text_answer(kind: str) -> None:
    parsed = get_adapter(kind).parse_response(fixture_bytes(kind, "plain_text.response.json"))
    [choice] = parsed.choices
    assert parsed.upstream_id
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == HELLO
    assert choice["finish_reason"] == "stop"
    assert choice["native_finish_reason"] in ("stop", "end_turn", "STOP")
    assert parsed.usage == Usage(prompt_tokens=11, completion_tokens=9)


@pytest.mark.parametrize("kind", KINDS)
def test_it_streams_text_with_role_first_finish_and_usage(kind: str) -> None:
    parser, result = replay(kind, "stream_text.stream.sse")
    assert result.content == HELLO
    assert result.roles == ["assistant"]
    assert result.finish_reason == "stop"
    assert parser.finished is True
    assert parser.upstream_id
    assert parser.usage == Usage(prompt_tokens=11, completion_tokens=9)


def _check_calls(calls: list[dict[str, Any]]) -> None:
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == EXPECTED_CALLS
    ids = [c["id"] for c in calls]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("kind", KINDS)
def test_it_parses_several_tool_calls_in_one_answer(kind: str) -> None:
    parsed = get_adapter(kind).parse_response(fixture_bytes(kind, "tools_nonstream.response.json"))
    [choice] = parsed.choices
    calls = choice["message"]["tool_calls"]
    assert [c["index"] for c in calls] == [0, 1]
    assert all(c["type"] == "function" for c in calls)
    _check_calls([{"id": c["id"], **c["function"]} for c in calls])
    assert choice["finish_reason"] == "tool_calls"
    assert parsed.usage == Usage(prompt_tokens=82, completion_tokens=51)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 100_000])
@pytest.mark.parametrize("kind", KINDS)
def test_it_streams_several_tool_calls_whose_arguments_arrive_in_pieces(kind: str, chunk_size: int) -> None:
    parser, result = replay(kind, "tools_stream_multi.stream.sse", chunk_size=chunk_size)
    _check_calls(result.calls())
    assert result.finish_reason == "tool_calls"
    assert result.roles == ["assistant"]
    assert parser.finished is True
    assert parser.usage == Usage(prompt_tokens=82, completion_tokens=51)


@pytest.mark.parametrize("kind", KINDS)
def test_it_returns_json_mode_content_untouched(kind: str) -> None:
    parsed = get_adapter(kind).parse_response(fixture_bytes(kind, "json_mode.response.json"))
    assert json.loads(parsed.choices[0]["message"]["content"]) == {"name": "Ada Lovelace", "age": 36}


THOUGHT = "27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231."
ANSWER = "27 \u00d7 453 = 12231."  # non-ASCII on purpose: split across TCP chunks by replay()
# Anthropic bills thinking inside output_tokens without reporting how many.
REASONING_USAGE = {
    "openai": Usage(prompt_tokens=16, completion_tokens=50, reasoning_tokens=40),
    "anthropic": Usage(prompt_tokens=16, completion_tokens=50),
    "gemini": Usage(prompt_tokens=16, completion_tokens=50, reasoning_tokens=40),
}


@pytest.mark.parametrize("kind", KINDS)
def test_it_returns_reasoning_beside_the_answer(kind: str) -> None:
    parsed = get_adapter(kind).parse_response(fixture_bytes(kind, "reasoning.response.json"))
    message = parsed.choices[0]["message"]
    assert message["reasoning"] == THOUGHT
    assert message["content"] == ANSWER
    assert parsed.usage == REASONING_USAGE[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_it_streams_reasoning_as_delta_reasoning(kind: str) -> None:
    parser, result = replay(kind, "reasoning.stream.sse")
    assert result.reasoning == THOUGHT
    assert result.content == ANSWER
    assert result.finish_reason == "stop"
    assert parser.usage == REASONING_USAGE[kind]


CACHE_USAGE = {
    "openai": Usage(prompt_tokens=2006, completion_tokens=300, cached_tokens=1920),
    "anthropic": Usage(prompt_tokens=2006, completion_tokens=300, cached_tokens=1920, cache_write_tokens=36),
    "gemini": Usage(prompt_tokens=2006, completion_tokens=300, cached_tokens=1920),
}


@pytest.mark.parametrize("kind", KINDS)
def test_it_counts_cached_and_cache_write_tokens_inside_prompt_tokens(kind: str) -> None:
    parsed = get_adapter(kind).parse_response(fixture_bytes(kind, "usage_cache.response.json"))
    assert parsed.usage == CACHE_USAGE[kind]


ERRORS = {
    "error_400": (400, False, "invalid_request", None),
    "error_429": (429, True, "rate_limit_exceeded", 20.0),
    "error_overloaded": (502, True, "provider_overloaded", None),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
@pytest.mark.parametrize("kind", KINDS)
def test_it_maps_upstream_errors_to_our_status_and_retry_policy(kind: str, case: str) -> None:
    recorded = fixture_json(kind, f"{case}.error.json")
    body = json.dumps(recorded["body"]).encode()
    error = get_adapter(kind).map_error(recorded["status"], recorded["headers"], body)
    status, retryable, error_type, retry_after = ERRORS[case]
    assert isinstance(error, ProviderError)
    assert (error.status, error.retryable, error.error_type, error.retry_after) == (
        status,
        retryable,
        error_type,
        retry_after,
    )
    assert error.upstream_status == recorded["status"]
    assert error.raw == recorded["body"]
    upstream_message = recorded["body"]["error"]["message"]
    assert error.message == upstream_message


@pytest.mark.parametrize("kind", KINDS)
def test_it_raises_a_retryable_error_when_the_stream_reports_one(kind: str) -> None:
    with pytest.raises(ProviderError) as caught:
        replay(kind, "stream_error.stream.sse")
    assert caught.value.retryable is True
    assert caught.value.status == 502


@pytest.mark.parametrize("kind", KINDS)
def test_it_falls_back_to_a_generic_message_for_a_non_json_error_page(kind: str) -> None:
    error = get_adapter(kind).map_error(502, {"content-type": "text/html"}, b"<html>Bad Gateway</html>")
    assert (error.status, error.retryable, error.message) == (502, True, "Provider returned error")
    assert error.raw == "<html>Bad Gateway</html>"


@pytest.mark.parametrize("kind", KINDS)
def test_it_refuses_a_2xx_body_that_is_not_a_completion(kind: str) -> None:
    with pytest.raises(ProviderError) as caught:
        get_adapter(kind).parse_response(b"<html>upstream proxy</html>")
    assert caught.value.retryable is True


@pytest.mark.parametrize("kind", KINDS)
def test_it_can_hide_reasoning_from_a_client_that_asked_to_exclude_it(kind: str) -> None:
    parsed = get_adapter(kind).parse_response(fixture_bytes(kind, "reasoning.response.json"))
    choice = parsed.choices[0]
    assert hide_reasoning(choice) is True
    assert choice["message"]["reasoning"] is None
    assert "reasoning_details" not in choice["message"]
    assert choice["message"]["content"] == ANSWER
    parser = get_adapter(kind).stream_parser()
    raw = fixture_bytes(kind, "reasoning.stream.sse")
    kept = [item for event in SSEDecoder().feed(raw) for item in parser.feed(event) if hide_reasoning(item)]  # type: ignore[arg-type]
    assert all("reasoning" not in item["delta"] and "reasoning_details" not in item["delta"] for item in kept)
    assert "".join(item["delta"].get("content") or "" for item in kept) == ANSWER
    assert kept[-1]["finish_reason"] == "stop"
