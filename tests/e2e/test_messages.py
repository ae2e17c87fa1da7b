"""The Anthropic Messages skin (`/api/v1/messages`) driven by the official `anthropic` SDK.

Every upstream family answers through its own adapter; the skin only changes the client-facing
shape, so the charge for the same upstream usage is the chat skin's to the nanodollar.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from billing.ledger import org_balance_nanos
from proxy.models import Endpoint
from tests.e2e.support import FORMATS, GRANT_NANOS, Gateway, World, assert_charged, expected_cost, generation
from tests.mockprovider import (
    DEFAULT_PIECES,
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
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
WEATHER: list[Any] = [
    {
        "name": "get_weather",
        "description": "Current weather for a city",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    }
]


@pytest.fixture
def roomy(world: World) -> None:
    """Anthropic thinking needs max_tokens above a 1024-token budget: lift the catalog's 1024-token
    output cap (before the gateway process loads the catalog)."""
    Endpoint.objects.update(max_completion_tokens=None)


@pytest.fixture
def claude(roomy: None, gateway: Gateway, world: World) -> Iterator[anthropic.Anthropic]:
    # What Claude Code does: ANTHROPIC_BASE_URL=<host>/api, the key as a Bearer token.
    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api", auth_token=world.key.key, api_key=None, max_retries=0, timeout=30
    ) as sdk:
        yield sdk


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_answers_messages_create_through_each_upstream_format(
    claude: anthropic.Anthropic, client: openai.OpenAI, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res = claude.messages.create(model=f"{provider}/ok", max_tokens=256, system="Be brief.", messages=MESSAGES)
    assert res.type == "message" and res.role == "assistant"
    assert res.model == f"{provider}/ok"
    assert [b.type for b in res.content] == ["text"]
    assert res.content[0].text == HELLO  # type: ignore[union-attr]
    assert res.stop_reason == "end_turn"
    assert (res.usage.input_tokens, res.usage.output_tokens) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    [upstream] = mock_provider.requests
    assert upstream.format == FORMATS[provider]
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert (res.usage.model_extra or {})["cost"] == cost / 1e9
    assert_charged(world, generation(res.id), cost)
    # The chat skin, same upstream usage: the same charge.
    chat = client.chat.completions.create(model=f"{provider}/ok", messages=MESSAGES)
    assert generation(chat.id).cost_nanos == generation(res.id).cost_nanos


def test_it_accepts_the_key_as_x_api_key(gateway: Gateway, world: World) -> None:
    with anthropic.Anthropic(base_url=f"{gateway.url}/api", api_key=world.key.key, max_retries=0) as sdk:
        res = sdk.messages.create(model="mock-anthropic/ok", max_tokens=64, messages=MESSAGES)
    assert res.content[0].text == HELLO  # type: ignore[union-attr]


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_streams_with_messages_stream(claude: anthropic.Anthropic, world: World, provider: str) -> None:
    with claude.messages.stream(model=f"{provider}/ok", max_tokens=256, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == HELLO
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (PROMPT_TOKENS, len(DEFAULT_PIECES))
    assert_charged(world, generation(final.id), expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


def _events(gateway: Gateway, world: World, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    res = httpx.post(
        f"{gateway.api_url}/messages",
        headers={"x-api-key": world.key.key, "anthropic-version": "2023-06-01"},
        json={**body, "stream": True},
        timeout=30,
    )
    assert res.status_code == 200, res.text + gateway.log()[-4000:]
    assert res.headers["content-type"].startswith("text/event-stream")
    events = []
    for event in parse_sse(res.text).events:
        payload = json.loads(event.data)
        assert payload["type"] == event.event
        events.append((event.event, payload))
    return events


def test_it_streams_anthropics_event_order_with_thinking_and_signature(
    roomy: None, gateway: Gateway, world: World
) -> None:
    body = {
        "model": "mock-anthropic/reasoning",
        "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": MESSAGES,
    }
    events = _events(gateway, world, body)
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    starts = [p["content_block"]["type"] for n, p in events if n == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [p["delta"] for n, p in events if n == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == "".join(REASONING_PIECES)
    assert [d["signature"] for d in deltas if d["type"] == "signature_delta"] == [SIGNATURE]
    assert "".join(d.get("text", "") for d in deltas if d["type"] == "text_delta") == HELLO
    # Every block is stopped before the next starts.
    opened: list[int] = []
    for name, payload in events:
        if name == "content_block_start":
            assert not opened
            opened.append(payload["index"])
        elif name == "content_block_stop":
            assert opened == [payload["index"]]
            opened.clear()
    message_delta = events[-2][1]
    assert message_delta["delta"]["stop_reason"] == "end_turn"
    usage = message_delta["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (PROMPT_TOKENS, 12)


def test_thinking_signatures_round_trip_to_an_anthropic_upstream(
    claude: anthropic.Anthropic, world: World, mock_provider: MockProvider
) -> None:
    first = claude.messages.create(
        model="mock-anthropic/reasoning",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=MESSAGES,
    )
    thinking = first.content[0]
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == ("".join(REASONING_PIECES), SIGNATURE)
    assert mock_provider.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    claude.messages.create(
        model="mock-anthropic/reasoning",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            *MESSAGES,
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {"role": "user", "content": "And again?"},
        ],
    )
    sent = mock_provider.requests[1].body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": "".join(REASONING_PIECES), "signature": SIGNATURE}
    assert sent[1]["type"] == "text"


@pytest.mark.parametrize("provider", list(FORMATS))
def test_it_runs_a_tool_round_trip(
    claude: anthropic.Anthropic, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res = claude.messages.create(
        model=f"{provider}/tools",
        max_tokens=256,
        tools=WEATHER,
        tool_choice={"type": "auto"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert res.stop_reason == "tool_use"
    [call] = [b for b in res.content if b.type == "tool_use"]
    assert (call.name, call.input) == ("get_weather", TOOL_ARGUMENTS[0])
    assert_charged(world, generation(res.id), expected_cost(PROMPT_TOKENS, TOOL_CALL_TOKENS))
    follow = claude.messages.create(
        model=f"{provider}/ok",
        max_tokens=256,
        tools=WEATHER,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in res.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}]},
        ],
    )
    assert follow.content[0].text == HELLO  # type: ignore[union-attr]
    sent = json.dumps(mock_provider.requests[1].body)
    assert "18C, sunny" in sent and "get_weather" in sent


def test_it_streams_a_tool_call_as_input_json_deltas(claude: anthropic.Anthropic, world: World) -> None:
    with claude.messages.stream(
        model="mock-openai/tools", max_tokens=256, tools=WEATHER, messages=[{"role": "user", "content": "Paris?"}]
    ) as stream:
        final = stream.get_final_message()
    [call] = [b for b in final.content if b.type == "tool_use"]
    assert call.input == TOOL_ARGUMENTS[0]
    assert final.stop_reason == "tool_use"


def test_it_counts_tokens_without_calling_an_upstream(
    claude: anthropic.Anthropic, world: World, mock_provider: MockProvider
) -> None:
    short = claude.messages.count_tokens(model="mock-anthropic/ok", messages=MESSAGES)
    longer = claude.messages.count_tokens(
        model="mock-anthropic/ok", system="You are a careful assistant. " * 20, tools=WEATHER, messages=MESSAGES
    )
    assert 0 < short.input_tokens < longer.input_tokens
    assert mock_provider.requests == []


def test_bad_input_gets_anthropics_error_shape_and_costs_nothing(
    claude: anthropic.Anthropic, world: World, mock_provider: MockProvider
) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        claude.messages.create(
            model="mock-anthropic/ok", max_tokens=64, messages=[{"role": "system", "content": "nope"}]
        )
    assert exc.value.status_code == 400
    body = exc.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "role" in body["error"]["message"]
    assert mock_provider.requests == []
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_an_unknown_key_gets_an_authentication_error(gateway: Gateway, mock_provider: MockProvider) -> None:
    with (
        anthropic.Anthropic(base_url=f"{gateway.url}/api", api_key="sk-or-v1-" + "0" * 64, max_retries=0) as bad,
        pytest.raises(anthropic.AuthenticationError) as exc,
    ):
        bad.messages.create(model="mock-anthropic/ok", max_tokens=64, messages=MESSAGES)
    assert exc.value.response.json()["error"]["type"] == "authentication_error"
    assert mock_provider.requests == []


@pytest.mark.parametrize("provider", ["mock-openai", "mock-anthropic"])
def test_an_upstream_error_gets_anthropics_shape_and_costs_nothing(
    claude: anthropic.Anthropic, gateway: Gateway, world: World, provider: str
) -> None:
    with pytest.raises(anthropic.APIStatusError) as exc:
        claude.messages.create(model=f"{provider}/503", max_tokens=64, messages=MESSAGES)
    assert exc.value.status_code == 502, gateway.log()[-3000:]
    assert exc.value.response.json()["error"]["type"] == "api_error"
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_a_get_is_refused_in_anthropics_shape(gateway: Gateway) -> None:
    res = httpx.get(f"{gateway.api_url}/messages", timeout=10)
    assert res.status_code == 405
    assert res.json()["type"] == "error"


@pytest.mark.parametrize("provider", list(FORMATS))
def test_a_claude_code_shaped_session_runs_against_each_upstream_family(
    claude: anthropic.Anthropic, world: World, mock_provider: MockProvider, provider: str
) -> None:
    """System blocks with cache_control, tools, thinking, streaming, and several tool round trips."""
    system: list[Any] = [
        {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
        {"type": "text", "text": "cwd: /repo", "cache_control": {"type": "ephemeral"}},
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in three cities, one at a time"}]
    ids = []
    for turn, scenario in enumerate(["tools", "tools", "reasoning"]):
        with claude.messages.stream(
            model=f"{provider}/{scenario}",
            max_tokens=4096,
            system=system,
            tools=WEATHER,
            thinking={"type": "enabled", "budget_tokens": 1024},
            metadata={"user_id": "user_1_account__session_1"},
            messages=messages,
        ) as stream:
            final = stream.get_final_message()
        ids.append(final.id)
        sent = json.dumps(mock_provider.requests[-1].body)
        assert sent.count("sunny") == turn  # every earlier tool result reaches the upstream
        messages.append({"role": "assistant", "content": [b.model_dump() for b in final.content]})
        uses = [b for b in final.content if b.type == "tool_use"]
        if scenario == "tools":
            assert final.stop_reason == "tool_use" and len(uses) == 1
            result = {"type": "tool_result", "tool_use_id": uses[0].id, "content": f"turn {turn}: sunny"}
            messages.append({"role": "user", "content": [result]})
    assert final.stop_reason == "end_turn"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[-1].text == HELLO  # type: ignore[union-attr]
    charged = [generation(i).cost_nanos for i in ids]
    assert charged[0] == charged[1] == expected_cost(PROMPT_TOKENS, TOOL_CALL_TOKENS)
    assert org_balance_nanos(world.org) == GRANT_NANOS - sum(charged)


@pytest.mark.parametrize("provider", ["mock-openai", "mock-anthropic"])
def test_a_mid_stream_failure_ends_with_an_error_event(gateway: Gateway, world: World, provider: str) -> None:
    events = _events(gateway, world, {"model": f"{provider}/error-after-2", "max_tokens": 64, "messages": MESSAGES})
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and "content_block_delta" in names
    name, payload = events[-1]
    assert name == "error" and payload["error"]["type"] and payload["error"]["message"]
    assert "message_stop" not in names
