"""Every client-facing skin (chat, Responses, Messages) in front of every upstream family, in process.

One cell per (skin, family, case): the skin's own success or error shape, and the settled charge.
The expected charges are one table independent of the skin, so a cell passing means the same upstream
usage costs the same through every skin, to the nanodollar, and an upstream error costs nothing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from billing.gate import get_gate, org_credit_view
from billing.ledger import org_balance_nanos
from billing.models import Generation
from billing.settlement import settle_pending
from proxy.models import Endpoint
from tests.e2e.support import FORMATS, GRANT_NANOS, PROVIDER_NAMES, World, expected_cost
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
from tests.proxy.gateway.support import asgi_client

HELLO = "".join(DEFAULT_PIECES)
THOUGHT = "".join(REASONING_PIECES)
QUESTION = "Weather in Paris?"
TOOL_RESULT = "18C, sunny"
SCHEMA: dict[str, Any] = {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}

OK = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
# Charged per request, in order; the same for every skin and every family (the mock's fixed counts).
EXPECTED: dict[str, list[int]] = {
    "plain": [OK],
    "stream": [OK],
    "tools": [expected_cost(PROMPT_TOKENS, TOOL_CALL_TOKENS), OK],
    "reasoning": [expected_cost(PROMPT_TOKENS, len(REASONING_PIECES) + len(DEFAULT_PIECES)), OK],
    "error": [],
}


@dataclass
class Turn:
    """One request's outcome: the response, and the generation id the skin showed the client."""

    response: httpx.Response
    generation_id: str | None


def _sse_payloads(res: httpx.Response) -> list[dict[str, Any]]:
    assert res.headers["content-type"].startswith("text/event-stream"), res.text
    return [json.loads(e.data) for e in parse_sse(res.text).events if e.data and e.data != "[DONE]"]


# --- chat ------------------------------------------------------------------------------------------


async def chat(client: httpx.AsyncClient, family: str, case: str, mock: MockProvider) -> list[Turn]:
    path = "/api/v1/chat/completions"
    question: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    if case == "plain":
        res = await client.post(path, json={"model": f"{family}/ok", "messages": question})
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["object"] == "chat.completion" and body["model"] == f"{family}/ok"
        [choice] = body["choices"]
        assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == HELLO
        assert choice["finish_reason"] == "stop"
        assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (PROMPT_TOKENS, 6)
        assert body["usage"]["cost"] == OK / 1e9
        return [Turn(res, body["id"])]
    if case == "stream":
        res = await client.post(path, json={"model": f"{family}/ok", "messages": question, "stream": True})
        assert res.status_code == 200, res.text
        chunks = _sse_payloads(res)
        assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
        text = "".join((c.get("delta") or {}).get("content") or "" for d in chunks for c in d["choices"])
        assert text == HELLO
        final = chunks[-1]
        assert final["choices"] == [] and final["usage"]["cost"] == OK / 1e9
        assert len({c["id"] for c in chunks}) == 1
        return [Turn(res, final["id"])]
    if case == "tools":
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
        res = await client.post(path, json={"model": f"{family}/tools", "messages": question, "tools": tools})
        assert res.status_code == 200, res.text
        first = res.json()
        [choice] = first["choices"]
        assert choice["finish_reason"] == "tool_calls"
        [call] = choice["message"]["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == TOOL_ARGUMENTS[0]
        messages = [
            *question,
            choice["message"],
            {"role": "tool", "tool_call_id": call["id"], "content": TOOL_RESULT},
        ]
        follow = await client.post(path, json={"model": f"{family}/ok", "messages": messages, "tools": tools})
        assert follow.status_code == 200, follow.text
        assert follow.json()["choices"][0]["message"]["content"] == HELLO
        return [Turn(res, first["id"]), Turn(follow, follow.json()["id"])]
    if case == "reasoning":
        body = {"model": f"{family}/reasoning", "messages": question, "reasoning": {"effort": "low"}}
        res = await client.post(path, json=body)
        assert res.status_code == 200, res.text
        first = res.json()
        message = first["choices"][0]["message"]
        assert message["content"] == HELLO and message["reasoning"] == THOUGHT
        details = message["reasoning_details"]
        assert details and "".join(d.get("text") or "" for d in details) == THOUGHT
        # What Cline, Roo Code and the AI SDK do: the assistant turn goes back with its details unmodified.
        turn = {"role": "assistant", "content": message["content"], "reasoning_details": details}
        body = {"model": f"{family}/ok", "messages": [*question, turn, {"role": "user", "content": "Again"}]}
        follow = await client.post(path, json=body)
        assert follow.status_code == 200, follow.text
        return [Turn(res, first["id"]), Turn(follow, follow.json()["id"])]
    assert case == "error"
    res = await client.post(path, json={"model": f"{family}/503", "messages": question})
    assert res.status_code == 502, res.text
    error = res.json()["error"]
    assert error["code"] == 502 and error["message"]
    assert error["metadata"]["provider_name"] == PROVIDER_NAMES[family]
    return [Turn(res, res.headers.get("x-generation-id"))]


# --- responses -------------------------------------------------------------------------------------


def _response_shape(body: dict[str, Any], model: str) -> None:
    assert body["object"] == "response" and body["status"] == "completed" and body["model"] == model
    assert body["id"] and body["error"] is None
    usage = body["usage"]
    assert usage["input_tokens"] == PROMPT_TOKENS
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def _output_text(body: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in body["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


async def responses(client: httpx.AsyncClient, family: str, case: str, mock: MockProvider) -> list[Turn]:
    path = "/api/v1/responses"
    question: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    if case == "plain":
        res = await client.post(path, json={"model": f"{family}/ok", "input": QUESTION})
        assert res.status_code == 200, res.text
        body = res.json()
        _response_shape(body, f"{family}/ok")
        assert [item["type"] for item in body["output"]] == ["message"] and _output_text(body) == HELLO
        assert body["usage"]["output_tokens"] == len(DEFAULT_PIECES) and body["usage"]["cost"] == OK / 1e9
        return [Turn(res, body["id"])]
    if case == "stream":
        res = await client.post(path, json={"model": f"{family}/ok", "input": QUESTION, "stream": True})
        assert res.status_code == 200, res.text
        events = _sse_payloads(res)
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == HELLO
        final = events[-1]["response"]
        _response_shape(final, f"{family}/ok")
        assert final["usage"]["cost"] == OK / 1e9
        return [Turn(res, final["id"])]
    if case == "tools":
        tools = [{"type": "function", "name": "get_weather", "parameters": SCHEMA}]
        res = await client.post(path, json={"model": f"{family}/tools", "input": question, "tools": tools})
        assert res.status_code == 200, res.text
        first = res.json()
        _response_shape(first, f"{family}/tools")
        [call] = [item for item in first["output"] if item["type"] == "function_call"]
        assert call["name"] == "get_weather" and json.loads(call["arguments"]) == TOOL_ARGUMENTS[0]
        items = [
            *question,
            *first["output"],
            {"type": "function_call_output", "call_id": call["call_id"], "output": TOOL_RESULT},
        ]
        follow = await client.post(path, json={"model": f"{family}/ok", "input": items, "tools": tools})
        assert follow.status_code == 200, follow.text
        assert _output_text(follow.json()) == HELLO
        return [Turn(res, first["id"]), Turn(follow, follow.json()["id"])]
    if case == "reasoning":
        body = {"model": f"{family}/reasoning", "input": question, "reasoning": {"effort": "low", "summary": "auto"}}
        res = await client.post(path, json=body)
        assert res.status_code == 200, res.text
        first = res.json()
        _response_shape(first, f"{family}/reasoning")
        assert [item["type"] for item in first["output"]] == ["reasoning", "message"]
        assert "".join(s["text"] for s in first["output"][0]["summary"]) == THOUGHT
        items = [*question, *first["output"], {"role": "user", "content": "Again"}]
        follow = await client.post(path, json={"model": f"{family}/ok", "input": items})
        assert follow.status_code == 200, follow.text
        return [Turn(res, first["id"]), Turn(follow, follow.json()["id"])]
    assert case == "error"
    res = await client.post(path, json={"model": f"{family}/503", "input": QUESTION})
    assert res.status_code == 502, res.text
    body = res.json()
    assert body["error"]["type"] == "server_error" and body["error"]["code"] and body["error"]["message"]
    assert body["error_type"]
    return [Turn(res, res.headers.get("x-generation-id"))]


# --- messages --------------------------------------------------------------------------------------


def _message_shape(body: dict[str, Any], model: str, stop_reason: str) -> None:
    assert body["type"] == "message" and body["role"] == "assistant" and body["model"] == model
    assert body["stop_reason"] == stop_reason and body["id"]
    assert body["usage"]["input_tokens"] == PROMPT_TOKENS


async def messages(client: httpx.AsyncClient, family: str, case: str, mock: MockProvider) -> list[Turn]:
    path = "/api/v1/messages"
    question: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
    if case == "plain":
        res = await client.post(path, json={"model": f"{family}/ok", "max_tokens": 256, "messages": question})
        assert res.status_code == 200, res.text
        body = res.json()
        _message_shape(body, f"{family}/ok", "end_turn")
        assert body["content"] == [{"type": "text", "text": HELLO}]
        assert body["usage"]["output_tokens"] == len(DEFAULT_PIECES) and body["usage"]["cost"] == OK / 1e9
        return [Turn(res, body["id"])]
    if case == "stream":
        body = {"model": f"{family}/ok", "max_tokens": 256, "messages": question, "stream": True}
        res = await client.post(path, json=body)
        assert res.status_code == 200, res.text
        events = _sse_payloads(res)
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["message_start", "ping"] and kinds[-2:] == ["message_delta", "message_stop"]
        text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
        assert text == HELLO
        assert events[-2]["delta"]["stop_reason"] == "end_turn"
        assert events[-2]["usage"]["output_tokens"] == len(DEFAULT_PIECES)
        return [Turn(res, events[0]["message"]["id"])]
    if case == "tools":
        tools = [{"name": "get_weather", "input_schema": SCHEMA}]
        body = {"model": f"{family}/tools", "max_tokens": 256, "messages": question, "tools": tools}
        res = await client.post(path, json=body)
        assert res.status_code == 200, res.text
        first = res.json()
        _message_shape(first, f"{family}/tools", "tool_use")
        [call] = [b for b in first["content"] if b["type"] == "tool_use"]
        assert call["name"] == "get_weather" and call["input"] == TOOL_ARGUMENTS[0]
        turns = [
            *question,
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": TOOL_RESULT}]},
        ]
        body = {"model": f"{family}/ok", "max_tokens": 256, "messages": turns, "tools": tools}
        follow = await client.post(path, json=body)
        assert follow.status_code == 200, follow.text
        assert follow.json()["content"] == [{"type": "text", "text": HELLO}]
        return [Turn(res, first["id"]), Turn(follow, follow.json()["id"])]
    if case == "reasoning":
        thinking = {"type": "enabled", "budget_tokens": 1024}
        body = {"model": f"{family}/reasoning", "max_tokens": 4096, "thinking": thinking, "messages": question}
        res = await client.post(path, json=body)
        assert res.status_code == 200, res.text
        first = res.json()
        _message_shape(first, f"{family}/reasoning", "end_turn")
        assert [b["type"] for b in first["content"]] == ["thinking", "text"]
        assert first["content"][0]["thinking"] == THOUGHT
        turns = [*question, {"role": "assistant", "content": first["content"]}, {"role": "user", "content": "Again"}]
        body = {"model": f"{family}/ok", "max_tokens": 4096, "thinking": thinking, "messages": turns}
        follow = await client.post(path, json=body)
        assert follow.status_code == 200, follow.text
        return [Turn(res, first["id"]), Turn(follow, follow.json()["id"])]
    assert case == "error"
    res = await client.post(path, json={"model": f"{family}/503", "max_tokens": 256, "messages": question})
    assert res.status_code == 502, res.text
    body = res.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error" and body["error"]["message"]
    return [Turn(res, res.headers.get("x-generation-id"))]


SKINS = {"chat": chat, "responses": responses, "messages": messages}


def _passed_back(mock: MockProvider, family: str, case: str) -> None:
    """What the follow-up turn carried to the upstream: the tool result, or the reasoning it was given."""
    follow = mock.requests[-1]
    assert follow.format == FORMATS[family]
    sent = json.dumps(follow.body)
    if case == "tools":
        assert TOOL_RESULT in sent and "get_weather" in sent
    if case == "reasoning" and family == "mock-anthropic":
        # The thinking block and its signature reach the Anthropic upstream unchanged, whatever the skin.
        assistant = follow.body["messages"][1]["content"]
        assert assistant[0] == {"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}


@pytest.mark.parametrize("case", list(EXPECTED))
@pytest.mark.parametrize("family", list(FORMATS))
@pytest.mark.parametrize("skin", list(SKINS))
def test_skin_by_family(live: World, mock_provider: MockProvider, skin: str, family: str, case: str) -> None:
    # Anthropic thinking needs max_tokens above its 1024-token budget: lift the catalog's output cap.
    Endpoint.objects.update(max_completion_tokens=None)

    async def main() -> list[Turn]:
        async with asgi_client(live.key.key) as client:
            return await SKINS[skin](client, family, case, mock_provider)

    turns = asyncio.run(main())
    assert [r.format for r in mock_provider.requests] == [FORMATS[family]] * len(mock_provider.requests)
    if case in ("tools", "reasoning"):
        _passed_back(mock_provider, family, case)
    settle_pending(get_gate().queue())

    rows = {g.generation_id: g for g in Generation.objects.filter(organization=live.org)}
    if case == "error":
        assert rows == {}
    else:
        ids = [t.generation_id for t in turns]
        assert set(rows) == set(ids), (ids, list(rows))
        assert [rows[i].cost_nanos for i in ids if i] == EXPECTED[case]
        assert all(rows[i].streamed == (case == "stream") for i in ids if i)
    assert org_balance_nanos(live.org) == GRANT_NANOS - sum(EXPECTED[case])
    credit = org_credit_view(live.org.pk)
    assert credit["reserved"] == 0 and credit["unsettled"] == 0
