"""The mock's Anthropic Messages and Gemini sides, driven with raw httpx the way the gateway's adapters call them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.mockprovider import (
    DEFAULT_PIECES,
    PROMPT_TOKENS,
    REASONING_PIECES,
    TOOL_ARGUMENTS,
    TOOL_CALL_TOKENS,
    MockProvider,
)
from tests.mockprovider.sse import parse_sse

pytestmark = pytest.mark.e2e

ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-mock", "anthropic-version": "2023-06-01"}
GEMINI_HEADERS = {"x-goog-api-key": "gm-mock"}


def anthropic(mock: MockProvider, model: str, **body: Any) -> httpx.Response:
    payload = {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{mock.url}/v1/messages", headers=ANTHROPIC_HEADERS, json=payload)


def gemini(mock: MockProvider, model: str, *, stream: bool = False, **body: Any) -> httpx.Response:
    action = "streamGenerateContent?alt=sse" if stream else "generateContent"
    payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], **body}
    return httpx.post(f"{mock.url}/v1beta/models/{model}:{action}", headers=GEMINI_HEADERS, json=payload)


def test_it_answers_an_anthropic_message_with_usage(mock: MockProvider) -> None:
    res = anthropic(mock, "mock-ok")
    body = res.json()
    assert body["type"] == "message" and body["stop_reason"] == "end_turn"
    assert body["content"] == [{"type": "text", "text": "".join(DEFAULT_PIECES)}]
    assert body["usage"]["input_tokens"] == PROMPT_TOKENS
    assert body["usage"]["output_tokens"] == len(DEFAULT_PIECES)
    assert mock.requests[0].headers["x-api-key"] == "sk-ant-mock"


def test_it_streams_anthropic_events_in_documented_order(mock: MockProvider) -> None:
    stream = parse_sse(anthropic(mock, "mock-reasoning", stream=True).text)
    names = [e.event for e in stream.events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert all(e.event == e.json()["type"] for e in stream.events)
    deltas = [e.json()["delta"] for e in stream.events if e.event == "content_block_delta"]
    thinking = "".join(d.get("thinking", "") for d in deltas if d["type"] == "thinking_delta")
    text = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    assert (thinking, text) == ("".join(REASONING_PIECES), "".join(DEFAULT_PIECES))
    assert any(d["type"] == "signature_delta" for d in deltas)
    final = stream.events[-2].json()
    assert final["usage"]["output_tokens"] == len(REASONING_PIECES) + len(DEFAULT_PIECES)


def test_it_streams_anthropic_tool_use_as_input_json_deltas(mock: MockProvider) -> None:
    tools = [{"name": "find_city", "input_schema": {"type": "object"}}]
    stream = parse_sse(anthropic(mock, "mock-multi-tools", stream=True, tools=tools).text)
    blocks: dict[int, dict[str, Any]] = {}
    for e in stream.events:
        data = e.json()
        if e.event == "content_block_start":
            blocks[data["index"]] = {"name": data["content_block"]["name"], "json": ""}
        elif e.event == "content_block_delta":
            assert data["delta"]["type"] == "input_json_delta"
            blocks[data["index"]]["json"] += data["delta"]["partial_json"]
    assert [b["name"] for b in blocks.values()] == ["find_city", "find_city"]
    assert [json.loads(b["json"]) for b in blocks.values()] == list(TOOL_ARGUMENTS[:2])
    assert stream.events[-2].json()["delta"]["stop_reason"] == "tool_use"
    assert stream.events[-2].json()["usage"]["output_tokens"] == 2 * TOOL_CALL_TOKENS


def test_it_sends_an_anthropic_error_event_mid_stream(mock: MockProvider) -> None:
    stream = parse_sse(anthropic(mock, "mock-error-after-2", stream=True).text)
    assert stream.events[-1].event == "error"
    assert stream.events[-1].json()["error"]["type"] == "overloaded_error"


def test_it_fails_anthropic_requests_in_anthropic_error_format(mock: MockProvider) -> None:
    res = anthropic(mock, "mock-429")
    assert res.status_code == 429 and res.headers["retry-after"] == "1"
    assert res.json()["error"]["type"] == "rate_limit_error"
    assert anthropic(mock, "mock-529").json()["error"]["type"] == "overloaded_error"


def test_it_requires_the_anthropic_version_header(mock: MockProvider) -> None:
    res = httpx.post(f"{mock.url}/v1/messages", headers={"x-api-key": "k"}, json={"model": "mock-ok"})
    assert res.status_code == 400
    assert res.json()["error"]["type"] == "invalid_request_error"


def test_it_streams_anthropic_without_usage_for_no_usage(mock: MockProvider) -> None:
    stream = parse_sse(anthropic(mock, "mock-no-usage", stream=True).text)
    assert "usage" not in stream.events[0].json()["message"]
    assert "usage" not in stream.events[-2].json()


def test_it_answers_gemini_generate_content_with_usage_metadata(mock: MockProvider) -> None:
    body = gemini(mock, "mock-reasoning").json()
    parts = body["candidates"][0]["content"]["parts"]
    assert parts == [
        {"text": "".join(REASONING_PIECES), "thought": True},
        {"text": "".join(DEFAULT_PIECES)},
    ]
    assert body["candidates"][0]["finishReason"] == "STOP"
    assert body["usageMetadata"] == {
        "promptTokenCount": PROMPT_TOKENS,
        "candidatesTokenCount": len(DEFAULT_PIECES),
        "thoughtsTokenCount": len(REASONING_PIECES),
        "totalTokenCount": PROMPT_TOKENS + len(DEFAULT_PIECES) + len(REASONING_PIECES),
    }
    assert mock.requests[0].model == "mock-reasoning"
    assert mock.requests[0].headers["x-goog-api-key"] == "gm-mock"


def test_it_streams_gemini_sse_with_usage_in_the_last_chunk(mock: MockProvider) -> None:
    chunks = parse_sse(gemini(mock, "mock-ok", stream=True).text).data()
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "".join(DEFAULT_PIECES)
    assert [("usageMetadata" in c) for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_it_answers_gemini_function_calls_named_after_the_declarations(mock: MockProvider) -> None:
    tools = [{"functionDeclarations": [{"name": "a_tool"}, {"name": "b_tool"}]}]
    chunks = parse_sse(gemini(mock, "mock-multi-tools", stream=True, tools=tools).text).data()
    parts = chunks[-1]["candidates"][0]["content"]["parts"]
    assert parts == [
        {"functionCall": {"name": "a_tool", "args": TOOL_ARGUMENTS[0]}},
        {"functionCall": {"name": "b_tool", "args": TOOL_ARGUMENTS[1]}},
    ]


def test_it_answers_gemini_json_mode(mock: MockProvider) -> None:
    body = gemini(mock, "mock-ok", generationConfig={"responseMimeType": "application/json"}).json()
    assert json.loads(body["candidates"][0]["content"]["parts"][0]["text"]) == {"answer": 42}


def test_it_fails_gemini_requests_in_google_error_format(mock: MockProvider) -> None:
    res = gemini(mock, "mock-503")
    assert res.status_code == 503
    assert res.json()["error"] == {"code": 503, "message": "Mock upstream error 503.", "status": "UNAVAILABLE"}


def test_it_accepts_the_gemini_key_as_a_query_parameter(mock: MockProvider) -> None:
    res = httpx.post(f"{mock.url}/v1beta/models/mock-ok:generateContent?key=abc", json={"contents": []})
    assert res.status_code == 200
    unauth = httpx.post(f"{mock.url}/v1beta/models/mock-ok:generateContent", json={"contents": []})
    assert unauth.status_code == 401 and unauth.json()["error"]["status"] == "UNAUTHENTICATED"


def test_it_cuts_a_gemini_stream_after_n_pieces(mock: MockProvider) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        gemini(mock, "mock-cut-after-2", stream=True)
    [req] = mock.requests
    assert req.cut and req.content_sent == 2


def test_it_answers_gemini_embeddings_without_usage_and_with_faults(mock: MockProvider) -> None:
    url = f"{mock.url}/v1beta/models/mock-ok"
    one = httpx.post(f"{url}:embedContent", headers=GEMINI_HEADERS, json={"content": {"parts": [{"text": "a"}]}})
    assert one.json() == {"embedding": {"values": [0.125, 0.375, 0.625]}}
    requests = [{"content": {"parts": [{"text": t}]}, "outputDimensionality": 2} for t in ("a", "b")]
    batch = httpx.post(f"{url}:batchEmbedContents", headers=GEMINI_HEADERS, json={"requests": requests})
    assert batch.json() == {"embeddings": [{"values": [0.125, 0.375]}, {"values": [0.25, 0.5]}]}
    assert "usageMetadata" not in batch.json()
    assert mock.requests_for("mock-ok")[-1].format == "gemini-embeddings"
    failing = httpx.post(
        f"{mock.url}/v1beta/models/mock-503:embedContent", headers=GEMINI_HEADERS, json={"content": {}}
    )
    assert failing.status_code == 503 and failing.json()["error"]["status"] == "UNAVAILABLE"
    unauthenticated = httpx.post(f"{url}:embedContent", json={"content": {"parts": [{"text": "a"}]}})
    assert unauthenticated.status_code == 401
