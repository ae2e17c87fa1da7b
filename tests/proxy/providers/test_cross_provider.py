"""A tool call made through one provider, answered on the next turn through another.

The gateway may route consecutive turns of one conversation to different providers (fail-over,
price), so a tool call's id and arguments must survive every adapter's outbound translation.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.providers import get_adapter
from tests.proxy.providers.support import fixture_bytes, sent_body

QUESTION = {"role": "user", "content": "What's the weather and the time in Paris?"}


def history_after(kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The assistant message parsed from `kind`'s tool-call answer, and the client's next turn."""
    message = (
        get_adapter(kind).parse_response(fixture_bytes(kind, "tools_nonstream.response.json")).choices[0]["message"]
    )
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"answer": call["function"]["name"]})}
        for call in message["tool_calls"]
    ]
    return message, [QUESTION, message, *results]


def test_it_sends_an_anthropic_tool_call_back_through_openai_with_ids_and_arguments_intact() -> None:
    message, history = history_after("anthropic")
    body = sent_body("openai", {"messages": history})
    sent_assistant = body["messages"][1]
    assert sent_assistant["tool_calls"] == message["tool_calls"]
    assert [c["id"] for c in sent_assistant["tool_calls"]] == [
        "toolu_01A09q90qw90lq917835lq9",
        "toolu_01BZd7x3JyEdWS3Ttmq5XqvG",
    ]
    assert [m["tool_call_id"] for m in body["messages"][2:]] == [c["id"] for c in message["tool_calls"]]
    assert "reasoning_details" not in sent_assistant


def test_it_sends_an_anthropic_tool_call_back_through_gemini_with_names_and_arguments_intact() -> None:
    _, history = history_after("anthropic")
    contents = sent_body("gemini", {"messages": history})["contents"]
    model_parts = contents[1]["parts"]
    assert model_parts[0] == {"text": "I'll look up both for you."}
    assert [p["functionCall"] for p in model_parts[1:]] == [
        {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}},
        {"name": "get_time", "args": {"city": "Paris"}},
    ]
    assert [p["functionResponse"] for p in contents[2]["parts"]] == [
        {"name": "get_weather", "response": {"answer": "get_weather"}},
        {"name": "get_time", "response": {"answer": "get_time"}},
    ]


def test_it_sends_a_gemini_tool_call_back_through_anthropic_with_the_synthesized_ids() -> None:
    message, history = history_after("gemini")
    messages = sent_body("anthropic", {"messages": history})["messages"]
    uses = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    results = messages[2]["content"]
    ids = [c["id"] for c in message["tool_calls"]]
    assert [u["id"] for u in uses] == ids == [r["tool_use_id"] for r in results]
    assert [u["input"] for u in uses] == [{"city": "Paris", "unit": "celsius"}, {"city": "Paris"}]
    # Gemini's thought signature means nothing to Claude and is not sent as a thinking block.
    assert all(b["type"] != "thinking" for b in messages[1]["content"])


def test_it_sends_an_openai_tool_call_back_through_anthropic_and_gemini() -> None:
    message, history = history_after("openai")
    anthropic = sent_body("anthropic", {"messages": history})["messages"]
    assert [b["id"] for b in anthropic[1]["content"]] == [c["id"] for c in message["tool_calls"]]
    assert [b["tool_use_id"] for b in anthropic[2]["content"]] == [c["id"] for c in message["tool_calls"]]
    gemini = sent_body("gemini", {"messages": history})["contents"]
    assert [p["functionCall"]["args"] for p in gemini[1]["parts"]] == [
        {"city": "Paris", "unit": "celsius"},
        {"city": "Paris"},
    ]


def test_it_continues_a_claude_thinking_chain_after_a_detour_through_gemini() -> None:
    claude = get_adapter("anthropic").parse_response(fixture_bytes("anthropic", "reasoning.response.json"))
    message = claude.choices[0]["message"]
    history = [{"role": "user", "content": "What is 27 * 453?"}, message, {"role": "user", "content": "Double it."}]
    gemini = sent_body("gemini", {"messages": history})["contents"][1]["parts"]
    assert gemini == [{"text": "27 \u00d7 453 = 12231."}]
    anthropic = sent_body("anthropic", {"messages": history})["messages"][1]["content"]
    assert anthropic[0]["type"] == "thinking"
    assert anthropic[0]["signature"] == message["reasoning_details"][0]["signature"]
