"""OpenAI and OpenAI-compatible hosts: what is forwarded, renamed, stripped, and read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from billing.pricing import Usage
from proxy.providers import get_adapter
from proxy.providers.base import ProviderError, Target
from proxy.sse import SSEEvent
from tests.proxy.providers.support import assemble

adapter = get_adapter("openai")
OPENAI = Target(
    base_url="https://api.openai.com/v1", api_key="sk-1", upstream_model="gpt-5-mini", provider_slug="openai"
)
COMPAT = Target(
    base_url="https://api.deepinfra.com/v1/openai/",
    api_key="di-1",
    upstream_model="meta-llama/Llama-3.3-70B-Instruct",
    provider_slug="deepinfra/turbo",
    extra_headers={"X-Extra": "1"},
)


def sent(request: dict[str, Any], target: Target = OPENAI, *, stream: bool = False) -> dict[str, Any]:
    return json.loads(adapter.build_request(request, target, stream=stream).body)  # type: ignore[arg-type]


CACHED_PARTS = {
    "role": "user",
    "content": [{"type": "text", "text": "big doc", "cache_control": {"type": "ephemeral"}}],
}
EXTRAS = {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1, "top_a": 0.1, "cache_control": {"type": "ephemeral"}}


def test_it_strips_what_openai_itself_rejects() -> None:
    body = sent({"messages": [CACHED_PARTS], "max_tokens": 100, **EXTRAS})
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "big doc"}]}]
    assert body["max_completion_tokens"] == 100
    assert not {"max_tokens", *EXTRAS} & body.keys()


def test_it_forwards_extra_samplers_and_cache_control_to_compatible_hosts() -> None:
    call = adapter.build_request({"messages": [CACHED_PARTS], "max_tokens": 100, **EXTRAS}, COMPAT, stream=False)  # type: ignore[arg-type]
    body = json.loads(call.body)
    assert call.url == "https://api.deepinfra.com/v1/openai/chat/completions"
    assert call.headers["Authorization"] == "Bearer di-1"
    assert call.headers["X-Extra"] == "1"
    assert body["model"] == "meta-llama/Llama-3.3-70B-Instruct"
    assert body["messages"] == [CACHED_PARTS]
    assert body["max_tokens"] == 100
    assert {k: body[k] for k in EXTRAS} == EXTRAS


def test_it_drops_reasoning_passed_back_on_assistant_messages() -> None:
    history = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "a",
            "reasoning": "thought",
            "reasoning_details": [{"type": "reasoning.text", "text": "thought", "format": "anthropic-claude-v1"}],
        },
        {"role": "user", "content": "more"},
    ]
    assert sent({"messages": history})["messages"][1] == {"role": "assistant", "content": "a"}


def test_it_sends_tool_choice_and_parallel_tool_calls_only_alongside_tools() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    knobs = {"parallel_tool_calls": False, "tool_choice": "none"}
    assert not knobs.keys() & sent({"messages": [{"role": "user", "content": "x"}], **knobs}).keys()
    body = sent({"messages": [{"role": "user", "content": "x"}], "tools": tools, **knobs})
    assert (body["parallel_tool_calls"], body["tool_choice"]) == (False, "none")
    assert body["tools"] == tools


@pytest.mark.parametrize(
    ("max_tokens", "rsn", "expected"),
    [
        (None, {"enabled": True, "effort": "low", "max_tokens": None, "exclude": False}, "low"),
        (None, {"enabled": True, "effort": "max", "max_tokens": None, "exclude": False}, "xhigh"),
        (None, {"enabled": True, "effort": None, "max_tokens": None, "exclude": False}, "medium"),
        (10000, {"enabled": True, "effort": None, "max_tokens": 8000, "exclude": False}, "high"),
        (10000, {"enabled": True, "effort": None, "max_tokens": 1000, "exclude": True}, "minimal"),
        (None, {"enabled": False, "effort": "none", "max_tokens": None, "exclude": False}, "none"),
        (None, {"enabled": False, "effort": None, "max_tokens": None, "exclude": False}, None),
    ],
)
def test_it_maps_reasoning_to_reasoning_effort(
    max_tokens: int | None, rsn: dict[str, Any], expected: str | None
) -> None:
    request: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "reasoning": rsn}
    if max_tokens:
        request["max_tokens"] = max_tokens
    body = sent(request)
    assert body.get("reasoning_effort") == expected
    assert "reasoning" not in body


def test_it_folds_reasoning_aliases_into_message_reasoning() -> None:
    raw = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "ok",
                    "reasoning": "why",
                    "reasoning_details": [{"type": "reasoning.text", "text": "why", "format": "unknown", "index": 0}],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "prompt_cache_hit_tokens": 2},
    }
    parsed = adapter.parse_response(json.dumps(raw).encode())
    message = parsed.choices[0]["message"]
    assert message["reasoning"] == "why"
    assert message["reasoning_details"][0]["text"] == "why"
    assert parsed.usage == Usage(prompt_tokens=5, completion_tokens=3, cached_tokens=2)


@pytest.mark.parametrize(
    ("native", "has_tools", "expected"),
    [
        ("stop", True, "tool_calls"),
        ("eos", False, "stop"),
        ("function_call", False, "tool_calls"),
        ("length", False, "length"),
    ],
)
def test_it_normalizes_finish_reasons_compatible_hosts_invent(native: str, has_tools: bool, expected: str) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": None if has_tools else "x"}
    if has_tools:
        message["tool_calls"] = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    raw = {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": native}]}
    choice = adapter.parse_response(json.dumps(raw).encode()).choices[0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (expected, native)


def test_it_raises_when_a_host_answers_200_with_an_error_body() -> None:
    raw = {"error": {"message": "model is loading", "code": 503}}
    with pytest.raises(ProviderError) as caught:
        adapter.parse_response(json.dumps(raw).encode())
    assert (caught.value.status, caught.value.retryable, caught.value.message) == (502, True, "model is loading")


def test_it_adds_the_role_when_a_host_omits_it_and_keeps_usage_from_the_empty_final_chunk() -> None:
    parser = adapter.stream_parser()
    first = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]}
    last = {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    items = parser.feed(SSEEvent(None, json.dumps(first)))
    assert items[0]["delta"] == {"content": "Hi", "role": "assistant"}
    assert parser.feed(SSEEvent(None, json.dumps(last))) == []
    assert parser.usage == Usage(prompt_tokens=3, completion_tokens=1)
    assert parser.finished is False
    assert parser.feed(SSEEvent(None, "[DONE]")) == []
    assert parser.finished is True


def test_it_maps_streamed_reasoning_aliases_to_delta_reasoning() -> None:
    parser = adapter.stream_parser()
    chunks = [
        {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "a"}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"reasoning_content": "b"}, "finish_reason": None}]},
        {"id": "c", "choices": [{"index": 0, "delta": {"content": "c"}, "finish_reason": "stop"}]},
    ]
    result = assemble([item for chunk in chunks for item in parser.feed(SSEEvent(None, json.dumps(chunk)))])  # type: ignore[misc]
    assert (result.reasoning, result.content, result.finish_reason) == ("ab", "c", "stop")


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (401, {}, (502, True, "provider_unavailable", None)),
        (402, {}, (502, True, "provider_unavailable", None)),
        (404, {}, (502, True, "provider_unavailable", None)),
        (408, {}, (408, True, "timeout", None)),
        (413, {}, (413, False, "payload_too_large", None)),
        (422, {}, (400, False, "invalid_request", None)),
        (429, {"retry-after": "1.5"}, (429, True, "rate_limit_exceeded", 1.5)),
        (429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, (429, True, "rate_limit_exceeded", 0.0)),
        (429, {"Retry-After": "inf"}, (429, True, "rate_limit_exceeded", None)),
        (429, {"Retry-After": "soon"}, (429, True, "rate_limit_exceeded", None)),
        (500, {}, (502, True, "provider_unavailable", None)),
        (503, {"Retry-After": "3"}, (502, True, "provider_overloaded", 3.0)),
    ],
)
def test_it_classifies_every_status_for_fail_over(
    status: int, headers: dict[str, str], expected: tuple[Any, ...]
) -> None:
    error = adapter.map_error(status, headers, b'{"detail": "upstream says no"}')
    assert (error.status, error.retryable, error.error_type, error.retry_after) == expected
    assert error.message == "upstream says no"
    assert error.upstream_status == status


def test_it_recognizes_context_length_errors() -> None:
    raw = {
        "error": {
            "message": "This model's maximum context length is 128000 tokens. "
            "However, your messages resulted in 130000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    error = adapter.map_error(400, {}, json.dumps(raw).encode())
    assert (error.status, error.retryable, error.error_type) == (400, False, "context_length_exceeded")


def test_it_numbers_tool_call_fragments_from_hosts_that_omit_the_index() -> None:
    parser = adapter.stream_parser()
    chunks = [
        [{"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":'}}],
        [{"function": {"arguments": " 1}"}}],
        [{"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}],
    ]
    items = []
    for fragments in chunks:
        chunk = {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": fragments}, "finish_reason": None}]}
        items.extend(parser.feed(SSEEvent(None, json.dumps(chunk))))
    done = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    items.extend(parser.feed(SSEEvent(None, json.dumps(done))))
    result = assemble(items)  # type: ignore[arg-type]
    assert result.calls() == [
        {"id": "a", "name": "f", "arguments": '{"x": 1}'},
        {"id": "b", "name": "g", "arguments": "{}"},
    ]
    assert result.finish_reason == "tool_calls"


def test_it_strips_tool_cache_control_for_strict_hosts_only() -> None:
    tools = [{"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}]
    request = {"messages": [{"role": "user", "content": "x"}], "tools": tools}
    assert sent(request)["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert sent(request, COMPAT)["tools"] == tools
