from __future__ import annotations

import orjson
import pytest

from proxy.gateway.errors import GatewayError
from proxy.gateway.validate import parse_request


def parse(body: object) -> object:
    return parse_request(orjson.dumps(body))


MSG = [{"role": "user", "content": "hi"}]


def test_it_folds_max_completion_tokens_and_strips_router_fields() -> None:
    req = parse_request(
        orjson.dumps(
            {
                "model": "openai/gpt-4o",
                "models": ["anthropic/claude-3.5-sonnet"],
                "messages": MSG,
                "max_completion_tokens": 50,
                "provider": {"sort": "price"},
                "usage": {"include": True},
                "stream_options": {"include_usage": True},
                "transforms": ["middle-out"],
                "temperature": 0.2,
            }
        )
    )
    assert req.models == ("openai/gpt-4o", "anthropic/claude-3.5-sonnet")
    assert req.body == {"messages": MSG, "max_tokens": 50, "temperature": 0.2}
    assert req.max_tokens == 50
    assert req.middle_out is True
    assert req.provider == {"sort": "price"}
    assert req.params == frozenset({"max_tokens", "temperature"})


def test_it_turns_a_prompt_into_a_user_message() -> None:
    req = parse_request(orjson.dumps({"model": "x/y", "prompt": "Say hi"}), legacy_completion=True)
    assert req.body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert req.legacy_completion


def test_it_normalizes_the_reasoning_controls() -> None:
    req = parse_request(orjson.dumps({"model": "x/y", "messages": MSG, "reasoning_effort": "high"}))
    assert req.body["reasoning"] == {"enabled": True, "effort": "high", "max_tokens": None, "exclude": False}
    req = parse_request(orjson.dumps({"model": "x/y", "messages": MSG, "reasoning": {"max_tokens": 2000}}))
    assert req.body["reasoning"]["enabled"] is True and req.body["reasoning"]["max_tokens"] == 2000
    req = parse_request(orjson.dumps({"model": "x/y", "messages": MSG, "include_reasoning": False}))
    assert req.body["reasoning"]["exclude"] is True
    req = parse_request(orjson.dumps({"model": "x/y", "messages": MSG, "reasoning": {"effort": "none"}}))
    assert req.body["reasoning"]["enabled"] is False
    low = parse_request(orjson.dumps({"model": "x/y", "messages": MSG, "reasoning": {"effort": "low"}}))
    assert "reasoning" in low.params


def test_it_marks_tools_and_structured_outputs_as_used_parameters() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    req = parse_request(orjson.dumps({"model": "x/y", "messages": MSG, "tools": tools, "response_format": rf}))
    assert {"tools", "response_format", "structured_outputs"} <= req.params


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": MSG, "temperature": "hot"}, "temperature must be a number"),
        ({"messages": MSG, "temperature": 3}, "temperature must be between"),
        ({"messages": MSG, "max_tokens": 0}, "max_tokens"),
        ({"messages": MSG, "max_tokens": True}, "max_tokens must be an integer"),
        ({"messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"messages": MSG, "tools": [{"type": "function", "function": {}}]}, "function.name"),
        ({"messages": MSG, "tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": []}, "messages must be a non-empty list"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role must be one of"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({}, "Exactly one of messages or prompt"),
        ({"messages": MSG, "prompt": "x"}, "Exactly one of messages or prompt"),
        ({"messages": MSG, "model": 5}, "model must be"),
        ({"messages": MSG, "models": ["a", 3]}, "models must be"),
        ({"messages": MSG, "route": "random"}, "route"),
        ({"messages": MSG, "reasoning": {"effort": "extreme"}}, "reasoning effort"),
        ({"messages": MSG, "reasoning_effort": "low", "reasoning": {"effort": "high"}}, "conflicts"),
        ({"messages": MSG, "response_format": {"type": "yaml"}}, "response_format"),
        ({"messages": MSG, "plugins": [{"name": "web"}]}, "plugin"),
    ],
)
def test_it_rejects_bad_input_with_a_400_that_says_why(body: dict[str, object], needle: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse(body)
    assert info.value.status == 400
    assert needle in info.value.message


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b""])
def test_it_rejects_bodies_that_are_not_a_json_object(raw: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        parse_request(raw)
    assert info.value.status == 400
    assert info.value.envelope()["error"]["code"] == 400


def test_it_defaults_to_the_auto_router_when_no_model_is_given() -> None:
    assert parse_request(orjson.dumps({"messages": MSG})).models == ("openrouter/auto",)
