"""The gateway driven by the official openai SDK and OpenRouter's own SDK, through each upstream wire format."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.support import (
    FORMATS,
    PROVIDER_NAMES,
    Gateway,
    World,
    assert_charged,
    expected_cost,
    generation,
    usd,
)
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

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
HELLO = "".join(DEFAULT_PIECES)
WEATHER_TOOL: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    }
]
# Anthropic's usage has no thinking breakdown (output_tokens includes it); the other two formats report it.
REPORTS_REASONING_TOKENS = ("mock-openai", "mock-gemini")
UPSTREAM_KEYS = {
    "mock-openai": ("authorization", "Bearer sk-upstream-openai"),
    "mock-anthropic": ("x-api-key", "sk-upstream-anthropic"),
    "mock-gemini": ("x-goog-api-key", "sk-upstream-gemini"),
}


def extra(obj: Any) -> dict[str, Any]:
    return obj.model_extra or {}


def assert_upstream_call(mock: MockProvider, provider: str, upstream_model: str, *, stream: bool) -> None:
    """The gateway called the right provider, in its wire format, with the platform's key for it."""
    [req] = mock.requests
    assert (req.format, req.model, req.stream) == (FORMATS[provider], upstream_model, stream)
    header, value = UPSTREAM_KEYS[provider]
    assert req.headers.get(header) == value or req.query.get("key") == value.removeprefix("Bearer ")
    if provider == "mock-openai" and stream:
        assert req.body["stream_options"] == {"include_usage": True}
    if provider == "mock-anthropic":
        assert req.headers["anthropic-version"]


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_answers_a_plain_chat_through_each_upstream_format(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res = client.chat.completions.create(model=f"{provider}/ok", messages=MESSAGES)
    assert res.id.startswith("gen-")
    assert res.model == f"{provider}/ok"
    assert extra(res)["provider"] == PROVIDER_NAMES[provider]
    assert res.choices[0].message.content == HELLO
    assert res.choices[0].finish_reason == "stop"
    assert res.usage is not None
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert extra(res.usage)["cost"] == pytest.approx(usd(cost))
    assert_upstream_call(mock_provider, provider, "mock-ok", stream=False)
    gen = generation(res.id)
    assert (gen.provider_name, gen.model, gen.streamed) == (PROVIDER_NAMES[provider], f"{provider}/ok", False)
    assert (gen.tokens_prompt, gen.tokens_completion, gen.usage_estimated) == (
        PROMPT_TOKENS,
        len(DEFAULT_PIECES),
        False,
    )
    assert_charged(world, gen, cost)


def test_it_answers_the_openrouter_sdk(openrouter_client: Any, world: World, mock_provider: MockProvider) -> None:
    res = openrouter_client.chat.send(model="mock-anthropic/ok", messages=[{"role": "user", "content": "Say hello"}])
    assert res.choices[0].message.content == HELLO
    assert res.model == "mock-anthropic/ok"
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert res.usage.cost == pytest.approx(usd(cost))
    assert_charged(world, generation(res.id), cost)


def test_it_streams_to_the_openrouter_sdk(openrouter_client: Any, world: World, mock_provider: MockProvider) -> None:
    stream = openrouter_client.chat.send(
        model="mock-gemini/ok", messages=[{"role": "user", "content": "Say hello"}], stream=True
    )
    with stream as events:
        chunks = list(events)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == HELLO
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(DEFAULT_PIECES)
    assert_charged(world, generation(chunks[0].id), expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_streams_chunks_then_usage_with_cost_then_done(
    gateway: Gateway, world: World, mock_provider: MockProvider, provider: str
) -> None:
    client = openai.OpenAI(base_url=gateway.api_url, api_key=world.key.key, max_retries=0)
    chunks = list(client.chat.completions.create(model=f"{provider}/ok", messages=MESSAGES, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == list(DEFAULT_PIECES)  # one client chunk per upstream piece: nothing buffered
    first = next(c for c in chunks if c.choices)
    assert first.choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {chunks[0].id} and chunks[0].id.startswith("gen-")
    assert {extra(c)["provider"] for c in chunks} == {PROVIDER_NAMES[provider]}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]  # usage once, last, always
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert extra(chunks[-1].usage)["cost"] == pytest.approx(usd(cost))
    assert_upstream_call(mock_provider, provider, "mock-ok", stream=True)
    gen = generation(chunks[0].id)
    assert gen.streamed and not gen.cancelled and gen.finish_reason == "stop"
    assert gen.ttft_ms is not None
    assert_charged(world, gen, cost)


def test_it_ends_the_raw_stream_with_done_and_an_sse_content_type(gateway: Gateway, world: World) -> None:
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-openai/chunks-50", "messages": MESSAGES, "stream": True},
        timeout=30,
    )
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/event-stream")
    assert res.headers["x-generation-id"].startswith("gen-")
    stream = parse_sse(res.text)
    assert stream.done
    data = stream.data()
    assert sum(1 for d in data if d["choices"] and d["choices"][0]["delta"].get("content")) == 50
    assert data[-1]["usage"]["completion_tokens"] == 50
    assert data[-1]["id"] == res.headers["x-generation-id"]


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_returns_tool_calls(client: openai.OpenAI, world: World, provider: str) -> None:
    res = client.chat.completions.create(model=f"{provider}/tools", messages=MESSAGES, tools=WEATHER_TOOL)
    [call] = res.choices[0].message.tool_calls or []
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == TOOL_ARGUMENTS[0]  # type: ignore[union-attr]
    assert res.choices[0].finish_reason == "tool_calls"
    assert_charged(world, generation(res.id), expected_cost(PROMPT_TOKENS, TOOL_CALL_TOKENS))


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_streams_multiple_tool_calls_openai_style(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str
) -> None:
    stream = client.chat.completions.create(
        model=f"{provider}/multi-tools", messages=MESSAGES, tools=WEATHER_TOOL, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finishes: list[str] = []
    chunks = list(stream)
    for chunk in chunks:
        if not chunk.choices:
            continue
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
        for tc in chunk.choices[0].delta.tool_calls or []:
            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] = slot["id"] or (tc.id or "")
            slot["name"] += (tc.function and tc.function.name) or ""
            slot["arguments"] += (tc.function and tc.function.arguments) or ""
    assert sorted(calls) == [0, 1]
    assert all(c["id"] for c in calls.values())
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_weather"]
    assert [json.loads(c["arguments"]) for c in calls.values()] == list(TOOL_ARGUMENTS[:2])
    assert finishes == ["tool_calls"]
    # The request's tools reached the upstream in its own format.
    body = mock_provider.requests[0].body
    names = {
        "mock-openai": lambda: [t["function"]["name"] for t in body["tools"]],
        "mock-anthropic": lambda: [t["name"] for t in body["tools"]],
        "mock-gemini": lambda: [d["name"] for t in body["tools"] for d in t.get("functionDeclarations", [])],
    }[provider]()
    assert names == ["get_weather"]
    assert_charged(world, generation(chunks[0].id), expected_cost(PROMPT_TOKENS, 2 * TOOL_CALL_TOKENS))


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_returns_json_in_json_mode(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res = client.chat.completions.create(
        model=f"{provider}/json", messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(res.choices[0].message.content or "") == {"answer": 42}
    assert_charged(world, generation(res.id), expected_cost(PROMPT_TOKENS, len(JSON_PIECES)))


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_returns_reasoning_as_message_reasoning(client: openai.OpenAI, world: World, provider: str) -> None:
    res = client.chat.completions.create(
        model=f"{provider}/reasoning", messages=MESSAGES, extra_body={"reasoning": {"max_tokens": 512}}
    )
    message = res.choices[0].message
    assert extra(message)["reasoning"] == "".join(REASONING_PIECES)
    assert message.content == HELLO
    completion = len(REASONING_PIECES) + len(DEFAULT_PIECES)
    assert res.usage is not None and res.usage.completion_tokens == completion
    gen = generation(res.id)
    if provider in REPORTS_REASONING_TOKENS:
        assert res.usage.completion_tokens_details is not None
        assert res.usage.completion_tokens_details.reasoning_tokens == len(REASONING_PIECES)
        assert gen.tokens_reasoning == len(REASONING_PIECES)
    assert_charged(world, gen, expected_cost(PROMPT_TOKENS, completion, gen.tokens_reasoning))


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_streams_reasoning_as_delta_reasoning(client: openai.OpenAI, world: World, provider: str) -> None:
    chunks = list(
        client.chat.completions.create(
            model=f"{provider}/reasoning",
            messages=MESSAGES,
            stream=True,
            extra_body={"reasoning": {"max_tokens": 512}},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(extra(d).get("reasoning") or "" for d in deltas) == "".join(REASONING_PIECES)
    assert "".join(d.content or "" for d in deltas) == HELLO
    first_reasoning = next(i for i, d in enumerate(deltas) if extra(d).get("reasoning"))
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert first_reasoning < first_content
    gen = generation(chunks[0].id)
    assert gen.tokens_completion == len(REASONING_PIECES) + len(DEFAULT_PIECES)
    if provider in REPORTS_REASONING_TOKENS:
        assert gen.tokens_reasoning == len(REASONING_PIECES)


def test_it_serves_the_generation_record_to_the_key_that_made_it(
    client: openai.OpenAI, gateway: Gateway, world: World
) -> None:
    res = client.chat.completions.create(
        model="mock-openai/ok", messages=MESSAGES, user="end-user-7", extra_headers={"X-Title": "E2E App"}
    )
    generation(res.id)  # settled
    auth = {"Authorization": f"Bearer {world.key.key}"}
    found = httpx.get(f"{gateway.api_url}/generation", params={"id": res.id}, headers=auth, timeout=30)
    assert found.status_code == 200
    data = found.json()["data"]
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert data["id"] == res.id
    assert data["total_cost"] == pytest.approx(usd(cost))
    assert data["provider_name"] == PROVIDER_NAMES["mock-openai"]
    assert data["model"] == "mock-openai/ok"
    assert (data["tokens_prompt"], data["tokens_completion"]) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert data["streamed"] is False and data["cancelled"] is False
    assert data["external_user"] == "end-user-7"
    outsider = httpx.get(
        f"{gateway.api_url}/generation",
        params={"id": res.id},
        headers={"Authorization": f"Bearer {world.broke_key.key}"},
        timeout=30,
    )
    assert outsider.status_code == 404  # another organization's key cannot see it


def test_it_serves_legacy_text_completions(client: openai.OpenAI, world: World, mock_provider: MockProvider) -> None:
    res = client.completions.create(model="mock-openai/ok", prompt="Say hello")
    assert res.object == "text_completion"
    assert res.choices[0].text == HELLO
    assert res.usage is not None and res.usage.completion_tokens == len(DEFAULT_PIECES)
    assert_charged(world, generation(res.id), expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


def test_it_streams_legacy_text_completions(client: openai.OpenAI, world: World) -> None:
    chunks = list(client.completions.create(model="mock-anthropic/ok", prompt="Say hello", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == HELLO
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(DEFAULT_PIECES)
    assert_charged(world, generation(chunks[0].id), expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))
