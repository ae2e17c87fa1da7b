"""Gemini generateContent: parts, function responses by name, schemas, thinking, signatures, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.providers import get_adapter
from proxy.providers.base import Target
from proxy.providers.gemini.wire import FOREIGN_SIGNATURE, synthesize_call_id
from proxy.sse import SSEEvent
from tests.proxy.providers.support import assemble, fixture_bytes, replay, sent_body

adapter = get_adapter("gemini")


def body(request: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return sent_body("gemini", request, **kw)


def test_it_answers_tool_calls_by_function_name_and_wraps_non_object_results() -> None:
    history = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "toolu_A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_B",
                    "type": "function",
                    "function": {"name": "get_forecast", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_A", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "toolu_B", "content": "rain later"},
    ]
    sent = body({"messages": history})
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": FOREIGN_SIGNATURE},
        {"functionCall": {"name": "get_forecast", "args": {"city": "Rome"}}},
    ]
    assert sent["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
        {"functionResponse": {"name": "get_forecast", "response": {"result": "rain later"}}},
    ]


def test_it_sends_each_thought_signature_back_on_the_part_it_came_with() -> None:
    parsed = adapter.parse_response(fixture_bytes("gemini", "tools_nonstream.response.json"))
    message = parsed.choices[0]["message"]
    first, second = message["tool_calls"]
    history = [
        {"role": "user", "content": "What's the weather and the time in Paris?"},
        message,
        {"role": "tool", "tool_call_id": first["id"], "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": second["id"], "content": '{"time": "14:05"}'},
    ]
    parts = body({"messages": history})["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "CiQB0e2Kb6Wm3nq4TyfXq2vQm1cMv5GfYV0Jx3RZbtb8Ck7BKr8="
    assert "thoughtSignature" not in parts[1]


def test_it_keeps_a_text_signature_and_does_not_resend_thought_text() -> None:
    message = adapter.parse_response(fixture_bytes("gemini", "reasoning.response.json")).choices[0]["message"]
    sent = body({"messages": [{"role": "user", "content": "q"}, message, {"role": "user", "content": "again"}]})
    assert sent["contents"][1]["parts"] == [
        {"text": "27 \u00d7 453 = 12231.", "thoughtSignature": "CiIB0e2Kb3dRh+BYdbZvmulSN2Pwwc75DfhLm8tQ8zPX"}
    ]


def test_it_sends_images_audio_and_files_as_inline_or_file_data() -> None:
    sent = body(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe"},
                        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a/cat.png?x=1"}},
                        {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                        {"type": "file", "file": {"file_data": "https://example.com/report"}},
                    ],
                }
            ]
        }
    )
    assert sent["contents"][0]["parts"] == [
        {"text": "Describe"},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a/cat.png?x=1"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/report"}},
    ]


def test_it_reduces_tool_schemas_to_the_openapi_subset_gemini_accepts() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "when": {"type": ["string", "null"], "format": "date-time"},
            "site": {"type": "string", "format": "uri"},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "level": {"enum": [1, 2, None]},
            "count": {"type": "integer", "enum": [1, 2]},
        },
        "required": ["site"],
    }
    sent = body(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema, "strict": True}}],
        }
    )
    assert sent["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object",
        "properties": {
            "when": {"type": "string", "nullable": True, "format": "date-time"},
            "site": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "level": {"type": "string", "enum": ["1", "2"]},
            "count": {"type": "integer"},
        },
        "required": ["site"],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ({"type": "function", "function": {"name": "f"}}, {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_it_maps_tool_choice_to_function_calling_config(choice: Any, expected: dict[str, Any]) -> None:
    sent = body(
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": choice,
        }
    )
    assert sent["toolConfig"] == {"functionCallingConfig": expected}
    assert sent["tools"] == [{"functionDeclarations": [{"name": "f"}]}]


def test_it_maps_sampling_and_output_controls_to_generation_config() -> None:
    sent = body(
        {
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0.1,
            "top_p": 0.9,
            "top_k": 40,
            "max_tokens": 300,
            "stop": ["\n\n", "END"],
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "response_format": {"type": "json_object"},
            "modalities": ["text", "image"],
        }
    )
    assert sent["generationConfig"] == {
        "temperature": 0.1,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 300,
        "stopSequences": ["\n\n", "END"],
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "responseMimeType": "application/json",
        "responseModalities": ["TEXT", "IMAGE"],
    }


@pytest.mark.parametrize(
    ("max_tokens", "rsn", "expected"),
    [
        (
            None,
            {"enabled": True, "effort": "medium", "max_tokens": None, "exclude": False},
            {"thinkingBudget": 8192, "includeThoughts": True},
        ),
        (
            None,
            {"enabled": True, "effort": None, "max_tokens": 3000, "exclude": True},
            {"thinkingBudget": 3000, "includeThoughts": False},
        ),
        (
            100,
            {"enabled": True, "effort": "minimal", "max_tokens": None, "exclude": False},
            {"thinkingBudget": 128, "includeThoughts": True},
        ),
        (
            None,
            {"enabled": True, "effort": None, "max_tokens": 90000, "exclude": False},
            {"thinkingBudget": 24576, "includeThoughts": True},
        ),
        (None, {"enabled": False, "effort": None, "max_tokens": None, "exclude": False}, {"thinkingBudget": 0}),
        (None, {"enabled": True, "effort": "none", "max_tokens": None, "exclude": False}, {"thinkingBudget": 0}),
    ],
)
def test_it_turns_reasoning_into_a_thinking_budget(
    max_tokens: int | None, rsn: dict[str, Any], expected: dict[str, Any]
) -> None:
    request: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "reasoning": rsn}
    if max_tokens is not None:
        request["max_tokens"] = max_tokens
    assert body(request)["generationConfig"]["thinkingConfig"] == expected


def test_it_accepts_a_base_url_that_already_names_the_api_version() -> None:
    target = Target(
        base_url="https://proxy.example/v1beta/", api_key="k", upstream_model="models/gemini-2.5-pro", provider_slug="g"
    )
    call = adapter.build_request({"messages": [{"role": "user", "content": "x"}]}, target, stream=True)
    assert call.url == "https://proxy.example/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"


@pytest.mark.parametrize(
    ("native", "expected"),
    [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"), ("OTHER", "stop")],
)
def test_it_normalizes_finish_reasons(native: str, expected: str) -> None:
    raw = {"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": native, "index": 0}]}
    choice = adapter.parse_response(json.dumps(raw).encode()).choices[0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (expected, native)


def test_it_reports_a_blocked_prompt_as_content_filter() -> None:
    raw = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    parsed = adapter.parse_response(json.dumps(raw).encode())
    choice = parsed.choices[0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("content_filter", "PROHIBITED_CONTENT")
    assert choice["message"]["content"] is None
    parser = adapter.stream_parser()
    [item] = parser.feed(SSEEvent(None, json.dumps(raw)))
    assert item["finish_reason"] == "content_filter"
    assert parser.finished is True


def test_it_gives_streamed_and_whole_answers_the_same_synthesized_call_ids() -> None:
    _, streamed = replay("gemini", "tools_stream_multi.stream.sse")
    ids = [c["id"] for c in streamed.calls()]
    assert ids == [
        synthesize_call_id("ZKzJaN7cKsmJz7IPqP3d0Ak", "get_weather", {"city": "Paris", "unit": "celsius"}, 0),
        synthesize_call_id("ZKzJaN7cKsmJz7IPqP3d0Ak", "get_time", {"city": "Paris"}, 1),
    ]
    whole = {
        "responseId": "ZKzJaN7cKsmJz7IPqP3d0Ak",
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}}},
                        {"functionCall": {"name": "get_time", "args": {"city": "Paris"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
    }
    parsed = adapter.parse_response(json.dumps(whole).encode())
    assert [c["id"] for c in parsed.choices[0]["message"]["tool_calls"]] == ids
    signature = [d for d in streamed.reasoning_details if d["type"] == "reasoning.encrypted"]
    assert signature[0]["id"] == ids[0]


def test_it_uses_call_ids_when_gemini_provides_them() -> None:
    raw = {
        "candidates": [
            {"content": {"parts": [{"functionCall": {"id": "fc-1", "name": "f", "args": {}}}]}, "finishReason": "STOP"}
        ]
    }
    [call] = adapter.parse_response(json.dumps(raw).encode()).choices[0]["message"]["tool_calls"]
    assert call["id"] == "fc-1"


def test_it_merges_consecutive_thought_parts_into_one_reasoning_block() -> None:
    _, result = replay("gemini", "reasoning.stream.sse")
    texts = [d for d in result.reasoning_details if d["type"] == "reasoning.text"]
    assert {d["index"] for d in texts} == {0}
    assert "".join(d["text"] for d in texts) == result.reasoning


def test_it_returns_generated_images_as_data_urls() -> None:
    raw = {
        "candidates": [
            {
                "content": {"parts": [{"text": "Here"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]},
                "finishReason": "STOP",
            }
        ]
    }
    message = adapter.parse_response(json.dumps(raw).encode()).choices[0]["message"]
    assert message["images"] == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]
    items = adapter.stream_parser().feed(SSEEvent(None, json.dumps(raw)))
    assert assemble(items).content == "Here"
    assert items[0]["delta"]["images"] == message["images"]


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (
            403,
            {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}},
            (502, True, "provider_unavailable"),
        ),
        (
            404,
            {"error": {"code": 404, "message": "models/gemini-9 is not found", "status": "NOT_FOUND"}},
            (502, True, "provider_unavailable"),
        ),
        (
            500,
            [{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}],
            (502, True, "provider_unavailable"),
        ),
        (
            504,
            {"error": {"code": 504, "message": "Deadline exceeded", "status": "DEADLINE_EXCEEDED"}},
            (408, True, "timeout"),
        ),
    ],
)
def test_it_classifies_errors_for_fail_over(status: int, raw: Any, expected: tuple[Any, ...]) -> None:
    error = adapter.map_error(status, {}, json.dumps(raw).encode())
    assert (error.status, error.retryable, error.error_type) == expected
    inner = raw[0] if isinstance(raw, list) else raw
    assert error.message == inner["error"]["message"]
