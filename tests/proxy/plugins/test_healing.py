"""Response healing (proxy/plugins/healing.py): the repairs, the schema check, when it applies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.plugins.healing import Healing, HealingError, heal_choices, heal_json, healing_for

PERSON: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.mark.parametrize(
    ("broken", "healed"),
    [
        ('```json\n{"name": "Bob"}\n```', {"name": "Bob"}),  # a markdown fence
        ('Here is the data you asked for:\n{"name": "Charlie", "age": 25}', {"name": "Charlie", "age": 25}),
        ('{"name": "Dana"}\n\nLet me know if you need more!', {"name": "Dana"}),  # trailing prose
        ('{"name": "David", "age": 35,}', {"name": "David", "age": 35}),  # a trailing comma
        ('{"tags": ["a", "b",], "n": [1, 2 , ],}', {"tags": ["a", "b"], "n": [1, 2]}),
        ('{name: "Eve", age: 40}', {"name": "Eve", "age": 40}),  # unquoted keys
        ('{"name": "Alice", "age": 30', {"name": "Alice", "age": 30}),  # a missing closing bracket
        ('{"a": {"b": [1, {"c": "cut', {"a": {"b": [1, {"c": "cut"}]}}),  # an unterminated string
        ('{"ok": True, "none": None}', {"ok": True, "none": None}),  # Python literals
        ('{"k":', {"k": None}),  # a dangling colon
        ('Sure!\n```json\n{items: [1, 2,], "note": "a, b } [c"', {"items": [1, 2], "note": "a, b } [c"}),
        ('[{"x": 1},]', [{"x": 1}]),
    ],
)
def test_it_repairs_what_models_get_wrong(broken: str, healed: object) -> None:
    assert orjson.loads(heal_json(broken)) == healed


def test_it_leaves_valid_json_byte_for_byte() -> None:
    text = '{ "name" : "Ann",  "age": 3 }'
    assert heal_json(text, PERSON) is text


def test_it_validates_against_the_schema() -> None:
    assert orjson.loads(heal_json('{name: "Al", age: 3,}', PERSON)) == {"name": "Al", "age": 3}
    with pytest.raises(HealingError, match=r"does not match the schema: \$: missing 'age'"):
        heal_json('```json\n{"name": "Al"}\n```', PERSON)
    with pytest.raises(HealingError, match="no JSON object or array"):
        heal_json("I cannot help with that.")


def test_it_applies_only_to_json_mode_requests_that_ask_for_it() -> None:
    plugin = [{"id": "response-healing"}]
    schema_format = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}}
    assert healing_for({"response_format": schema_format}, plugin) == Healing(PERSON)
    assert healing_for({"response_format": {"type": "json_object"}}, tuple(plugin)) == Healing(None)
    assert healing_for({"response_format": {"type": "text"}}, plugin) is None
    assert healing_for({}, plugin) is None
    assert healing_for({"response_format": {"type": "json_object"}}, []) is None
    disabled = [{"id": "response-healing", "enabled": False}]
    assert healing_for({"response_format": {"type": "json_object"}}, disabled) is None


def test_it_never_heals_an_answer_cut_by_max_tokens_and_says_why_it_failed() -> None:
    choices: list[dict[str, Any]] = [
        {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": '{"name": "Al'}},
        {"index": 1, "finish_reason": "stop", "message": {"role": "assistant", "content": '{"name": "Al",}'}},
        {"index": 2, "finish_reason": "stop", "message": {"role": "assistant", "content": "No."}},
    ]
    heal_choices(choices, Healing(None))
    assert choices[0]["message"]["content"] == '{"name": "Al'  # truncated: left alone
    assert "error" not in choices[0]
    assert choices[1]["message"]["content"] == '{"name":"Al"}'
    assert choices[2]["message"]["content"] == "No."
    assert choices[2]["error"]["metadata"] == {"error_type": "response_healing_failed"}
    assert choices[2]["error"]["message"].startswith("Response healing failed: the answer contains no JSON")
