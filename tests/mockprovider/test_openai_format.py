"""The mock's OpenAI-compatible side, driven by the official openai SDK the way the gateway's clients are."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.mockprovider import (
    DEFAULT_PIECES,
    JSON_PIECES,
    PROMPT_TOKENS,
    REASONING_PIECES,
    TOOL_ARGUMENTS,
    TOOL_CALL_TOKENS,
    MockProvider,
)
from tests.mockprovider.sse import parse_sse

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "Say hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup_weather", "parameters": {"type": "object", "properties": {}}},
    }
]


def client(mock: MockProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock.openai_base_url, api_key="sk-mock", max_retries=0)


def test_it_answers_a_plain_chat_with_exact_usage(mock: MockProvider) -> None:
    res = client(mock).chat.completions.create(model="mock-ok", messages=MESSAGES)  # type: ignore[arg-type]
    assert res.choices[0].message.content == "".join(DEFAULT_PIECES)
    assert res.choices[0].finish_reason == "stop"
    assert res.usage is not None
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    [req] = mock.requests
    assert req.format == "openai"
    assert req.headers["authorization"] == "Bearer sk-mock"
    assert req.body["messages"] == MESSAGES
    assert req.completed


def test_it_streams_one_piece_per_chunk_and_usage_only_when_asked(mock: MockProvider) -> None:
    stream = client(mock).chat.completions.create(
        model="mock-ok",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == list(DEFAULT_PIECES)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(DEFAULT_PIECES)

    without = list(client(mock).chat.completions.create(model="mock-ok", messages=MESSAGES, stream=True))  # type: ignore[arg-type]
    assert all(c.usage is None for c in without)
    assert without[-1].choices[0].finish_reason == "stop"


def test_it_streams_n_chunks_for_mock_chunks_n(mock: MockProvider) -> None:
    res = httpx.post(
        f"{mock.openai_base_url}/chat/completions",
        headers={"Authorization": "Bearer k"},
        json={"model": "mock-chunks-50", "messages": MESSAGES, "stream": True},
    )
    stream = parse_sse(res.text)
    assert stream.done
    contents = [d["choices"][0]["delta"].get("content") for d in stream.data()]
    assert len([c for c in contents if c]) == 50


def test_it_streams_multiple_tool_calls_in_fragments_named_after_the_request_tools(mock: MockProvider) -> None:
    stream = client(mock).chat.completions.create(
        model="mock-multi-tools",
        messages=MESSAGES,  # type: ignore[arg-type]
        tools=TOOLS,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += tc.id or ""
            slot["name"] += (tc.function and tc.function.name) or ""
            slot["arguments"] += (tc.function and tc.function.arguments) or ""
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [c["name"] for c in calls.values()] == ["lookup_weather", "lookup_weather"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == list(TOOL_ARGUMENTS[:2])
    assert usage is not None and usage.completion_tokens == 2 * TOOL_CALL_TOKENS


def test_it_answers_tool_calls_whole_when_not_streaming(mock: MockProvider) -> None:
    res = client(mock).chat.completions.create(model="mock-tools", messages=MESSAGES, tools=TOOLS)  # type: ignore[arg-type]
    [call] = res.choices[0].message.tool_calls or []
    assert call.function.name == "lookup_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == TOOL_ARGUMENTS[0]  # type: ignore[union-attr]
    assert res.choices[0].finish_reason == "tool_calls"


def test_it_returns_reasoning_content_and_reasoning_tokens(mock: MockProvider) -> None:
    res = client(mock).chat.completions.create(model="mock-reasoning", messages=MESSAGES)  # type: ignore[arg-type]
    extra = res.choices[0].message.model_extra or {}
    assert extra["reasoning_content"] == "".join(REASONING_PIECES)
    assert res.usage is not None and res.usage.completion_tokens_details is not None
    assert res.usage.completion_tokens_details.reasoning_tokens == len(REASONING_PIECES)
    assert res.usage.completion_tokens == len(REASONING_PIECES) + len(DEFAULT_PIECES)


def test_it_answers_json_when_the_request_asks_for_json_mode(mock: MockProvider) -> None:
    res = client(mock).chat.completions.create(
        model="mock-ok",
        messages=MESSAGES,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    assert json.loads(res.choices[0].message.content or "") == {"answer": 42}
    assert res.usage is not None and res.usage.completion_tokens == len(JSON_PIECES)


def test_it_answers_an_empty_completion_with_zero_tokens(mock: MockProvider) -> None:
    res = client(mock).chat.completions.create(model="mock-empty", messages=MESSAGES)  # type: ignore[arg-type]
    assert res.choices[0].message.content is None
    assert res.usage is not None and res.usage.completion_tokens == 0


def test_it_fails_with_503_in_openai_error_format(mock: MockProvider) -> None:
    with pytest.raises(openai.InternalServerError) as exc:
        client(mock).chat.completions.create(model="mock-503", messages=MESSAGES)  # type: ignore[arg-type]
    assert exc.value.status_code == 503
    assert exc.value.response.json()["error"]["type"] == "server_error"


def test_it_rate_limits_with_retry_after(mock: MockProvider) -> None:
    with pytest.raises(openai.RateLimitError) as exc:
        client(mock).chat.completions.create(model="mock-429", messages=MESSAGES)  # type: ignore[arg-type]
    assert exc.value.response.headers["retry-after"] == "1"
    assert exc.value.response.json()["error"]["code"] == "rate_limit_exceeded"


def test_it_refuses_a_request_without_a_key(mock: MockProvider) -> None:
    res = httpx.post(f"{mock.openai_base_url}/chat/completions", json={"model": "mock-ok", "messages": MESSAGES})
    assert res.status_code == 401
    assert mock.requests[0].status == 401


def test_it_waits_before_the_first_byte(mock: MockProvider) -> None:
    started = time.monotonic()
    res = client(mock).chat.completions.create(model="mock-slow-first-byte-300", messages=MESSAGES)  # type: ignore[arg-type]
    assert time.monotonic() - started >= 0.3
    assert res.choices[0].message.content == "".join(DEFAULT_PIECES)


def test_it_cuts_the_stream_after_n_pieces(mock: MockProvider) -> None:
    received: list[str] = []
    with pytest.raises((httpx.RemoteProtocolError, openai.APIError)):
        stream = client(mock).chat.completions.create(model="mock-cut-after-3", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == list(DEFAULT_PIECES[:3])
    [req] = mock.requests
    assert req.cut and not req.completed and req.content_sent == 3


def test_it_cuts_a_non_streamed_body_short(mock: MockProvider) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(
            f"{mock.openai_base_url}/chat/completions",
            headers={"Authorization": "Bearer k"},
            json={"model": "mock-cut-after-1", "messages": MESSAGES},
        )


def test_it_streams_without_usage_even_when_asked(mock: MockProvider) -> None:
    chunks = list(
        client(mock).chat.completions.create(
            model="mock-no-usage",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(DEFAULT_PIECES)


def test_it_sends_an_error_event_mid_stream(mock: MockProvider) -> None:
    res = httpx.post(
        f"{mock.openai_base_url}/chat/completions",
        headers={"Authorization": "Bearer k"},
        json={"model": "mock-error-after-2", "messages": MESSAGES, "stream": True},
    )
    data = parse_sse(res.text).data()
    assert [d["choices"][0]["delta"].get("content") for d in data[1:3]] == list(DEFAULT_PIECES[:2])
    assert data[-1]["error"]["type"] == "server_error"


def test_it_fails_half_of_a_flaky_models_requests_alternately(mock: MockProvider) -> None:
    statuses = [
        httpx.post(
            f"{mock.openai_base_url}/chat/completions",
            headers={"Authorization": "Bearer k"},
            json={"model": "mock-flaky-50", "messages": MESSAGES},
        ).status_code
        for _ in range(6)
    ]
    assert statuses == [200, 503, 200, 503, 200, 503]


def test_it_takes_scenario_overrides_from_the_control_api(mock: MockProvider) -> None:
    ctl = httpx.post(f"{mock.url}/_control", json={"model": "gpt-x", "scenario": {"fail_first": 1, "fail_status": 502}})
    assert ctl.status_code == 200
    first = httpx.post(
        f"{mock.openai_base_url}/chat/completions", headers={"Authorization": "Bearer k"}, json={"model": "gpt-x"}
    )
    second = httpx.post(
        f"{mock.openai_base_url}/chat/completions", headers={"Authorization": "Bearer k"}, json={"model": "gpt-x"}
    )
    assert (first.status_code, second.status_code) == (502, 200)
    log = httpx.get(f"{mock.url}/_requests").json()["data"]
    assert [r["status"] for r in log] == [502, 200]
    assert httpx.post(f"{mock.url}/_reset").status_code == 200
    assert httpx.get(f"{mock.url}/_requests").json()["data"] == []


def test_it_records_a_client_that_disconnects_mid_stream(mock: MockProvider) -> None:
    with httpx.stream(
        "POST",
        f"{mock.openai_base_url}/chat/completions",
        headers={"Authorization": "Bearer k"},
        json={"model": "mock-slow-chunks-50", "messages": MESSAGES, "stream": True},
    ) as res:
        lines = res.iter_lines()
        seen = [line for _, line in zip(range(6), lines, strict=False)]
    assert any("t1" in line for line in seen)
    assert mock.wait_until(lambda: mock.requests[0].cancelled)
    assert 0 < mock.requests[0].content_sent < 20


def test_it_serves_legacy_text_completions(mock: MockProvider) -> None:
    res = client(mock).completions.create(model="mock-ok", prompt="Say hello")
    assert res.choices[0].text == "".join(DEFAULT_PIECES)
    assert res.usage is not None and res.usage.prompt_tokens == PROMPT_TOKENS
