"""The OpenAI Responses skin (`/api/v1/responses`) driven by the official `openai` SDK.

Stateless like OpenRouter's; every upstream family answers through its own adapter, and the same
upstream usage is charged exactly what the chat skin charges.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from billing.ledger import org_balance_nanos
from tests.e2e.support import FORMATS, GRANT_NANOS, Gateway, World, assert_charged, expected_cost, generation
from tests.mockprovider import (
    DEFAULT_PIECES,
    JSON_PIECES,
    PROMPT_TOKENS,
    REASONING_PIECES,
    TOOL_ARGUMENTS,
    TOOL_CALL_TOKENS,
    MockProvider,
)
from tests.mockprovider.scenarios import SIGNATURE
from tests.mockprovider.sse import parse_sse

pytestmark = pytest.mark.e2e

HELLO = "".join(DEFAULT_PIECES)
WEATHER: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    }
]


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_answers_responses_create_through_each_upstream_format(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res = client.responses.create(model=f"{provider}/ok", instructions="Be brief.", input="Say hello")
    assert res.object == "response" and res.status == "completed"
    assert res.output_text == HELLO
    assert [item.type for item in res.output] == ["message"]
    assert res.usage is not None
    assert (res.usage.input_tokens, res.usage.output_tokens) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    [upstream] = mock_provider.requests
    assert upstream.format == FORMATS[provider]
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert (res.usage.model_extra or {})["cost"] == cost / 1e9
    assert_charged(world, generation(res.id), cost)
    chat = client.chat.completions.create(model=f"{provider}/ok", messages=[{"role": "user", "content": "Say hello"}])
    assert generation(chat.id).cost_nanos == generation(res.id).cost_nanos


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_streams_the_documented_event_sequence(client: openai.OpenAI, world: World, provider: str) -> None:
    events = list(client.responses.create(model=f"{provider}/ok", input="Say hello", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == HELLO  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == HELLO
    assert final.usage is not None and final.usage.output_tokens == len(DEFAULT_PIECES)
    assert_charged(world, generation(final.id), expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


@pytest.mark.parametrize("provider", list(FORMATS))
@pytest.mark.parametrize("stream", [False, True])
def test_it_runs_a_function_tool_round_trip(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str, stream: bool
) -> None:
    question: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        events = list(client.responses.create(model=f"{provider}/tools", input=question, tools=WEATHER, stream=True))
        kinds = [e.type for e in events]
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
        res = events[-1].response  # type: ignore[union-attr]
    else:
        res = client.responses.create(model=f"{provider}/tools", input=question, tools=WEATHER, tool_choice="auto")
    [call] = [item for item in res.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == TOOL_ARGUMENTS[0]
    assert_charged(world, generation(res.id), expected_cost(PROMPT_TOKENS, TOOL_CALL_TOKENS))
    follow = client.responses.create(
        model=f"{provider}/ok",
        tools=WEATHER,
        input=[
            *question,
            *[item.model_dump(exclude_none=True) for item in res.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"},
        ],
    )
    assert follow.output_text == HELLO
    sent = json.dumps(mock_provider.requests[-1].body)
    assert "18C, sunny" in sent and "get_weather" in sent


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_returns_structured_output(client: openai.OpenAI, world: World, provider: str) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    res = client.responses.create(
        model=f"{provider}/json",
        input="The answer?",
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}},
    )
    assert json.loads(res.output_text) == {"answer": 42}
    assert_charged(world, generation(res.id), expected_cost(PROMPT_TOKENS, len(JSON_PIECES)))


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_streams_reasoning_as_summary_events_and_passes_it_back(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str
) -> None:
    events = list(
        client.responses.create(
            model=f"{provider}/reasoning", input="Think", reasoning={"effort": "low", "summary": "auto"}, stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_text.delta") < kinds.index("response.output_text.delta")
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")  # type: ignore[union-attr]
    assert summary == "".join(REASONING_PIECES)
    res = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in res.output] == ["reasoning", "message"]
    gen = generation(res.id)
    assert_charged(
        world, gen, expected_cost(PROMPT_TOKENS, len(REASONING_PIECES) + len(DEFAULT_PIECES), gen.tokens_reasoning)
    )
    client.responses.create(
        model=f"{provider}/ok",
        input=[
            {"role": "user", "content": "Think"},
            *[item.model_dump(exclude_none=True) for item in res.output],
            {"role": "user", "content": "Again"},
        ],
    )
    if provider == "mock-anthropic":
        # The thinking block's signature reaches the Anthropic upstream unchanged.
        assistant = mock_provider.requests[-1].body["messages"][1]["content"]
        assert assistant[0] == {"type": "thinking", "thinking": "".join(REASONING_PIECES), "signature": SIGNATURE}


def test_store_true_is_refused_as_stateless(client: openai.OpenAI, world: World, mock_provider: MockProvider) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="mock-openai/ok", input="hi", store=True)
    assert "stateless" in exc.value.response.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="mock-openai/ok", input="hi", previous_response_id="resp_123")
    assert mock_provider.requests == []
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_bad_input_gets_the_responses_error_shape(gateway: Gateway, world: World, mock_provider: MockProvider) -> None:
    res = httpx.post(
        f"{gateway.api_url}/responses",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-openai/ok", "input": [{"type": "mystery"}]},
        timeout=30,
    )
    assert res.status_code == 400
    body = res.json()
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"]
    assert body["error_type"]
    assert mock_provider.requests == []
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_a_mid_stream_failure_ends_with_response_failed(gateway: Gateway, world: World) -> None:
    res = httpx.post(
        f"{gateway.api_url}/responses",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-openai/error-after-2", "input": "hi", "stream": True},
        timeout=30,
    )
    events = [json.loads(e.data) for e in parse_sse(res.text).events]
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_the_openai_agents_sdk_runs_on_its_default_responses_model(gateway: Gateway, world: World) -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)  # its exporter would call OpenAI's servers
    sdk = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=world.key.key, max_retries=0)
    calls: list[dict[str, str]] = []

    @function_tool
    def get_weather(location: str, unit: str) -> str:
        """Current weather for a city."""
        calls.append({"location": location, "unit": unit})
        return "18C, sunny"

    chat = Agent(name="greeter", instructions="Greet.", model=OpenAIResponsesModel("mock-openai/ok", sdk))
    assert Runner.run_sync(chat, "Say hello").final_output == HELLO
    tools = Agent(
        name="weather",
        instructions="Use the tool.",
        model=OpenAIResponsesModel("mock-anthropic/tools", sdk),
        tools=[get_weather],
        tool_use_behavior="stop_on_first_tool",
    )
    result = Runner.run_sync(tools, "Weather in Paris?")
    assert calls == [TOOL_ARGUMENTS[0]]
    assert result.final_output == "18C, sunny"
