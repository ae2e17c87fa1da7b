"""The three upstream wire formats the gateway speaks: OpenAI chat completions, Anthropic Messages, Gemini.

Each builder turns one `Reply` (what to say, already decided from the scenario and the request)
into the provider's documented JSON body, or into its stream as a list of `Frame`s. A frame knows
whether it carries a content piece, so the server can cut the stream or inject an error after
exactly N pieces whatever the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from tests.mockprovider.scenarios import (
    BAD_TOOL_ARGUMENTS,
    DEFAULT_TOOL_NAME,
    SIGNATURE,
    TOOL_ARGUMENTS,
    Scenario,
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()

    def fragments(self) -> list[str]:
        """The arguments JSON in three pieces, the way providers stream them."""
        text = self.arguments_json
        third = max(1, len(text) // 3)
        return [text[:third], text[third : 2 * third], text[2 * third :]]


@dataclass(frozen=True, slots=True)
class Reply:
    id: str
    model: str
    created: int
    content: tuple[str, ...]
    reasoning: tuple[str, ...]
    tool_calls: tuple[ToolCall, ...]
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    usage: bool
    service_tier: str | None = None  # OpenAI format: the tier reported as served (echoed, or "+served-<tier>")

    @property
    def text(self) -> str:
        return "".join(self.content)

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)


@dataclass(frozen=True, slots=True)
class Frame:
    data: bytes
    content: bool = False  # carries one content piece (counts toward cut_after / error_after)


def build_reply(
    scenario: Scenario,
    *,
    model: str,
    request_id: int,
    created: int,
    tool_names: list[str],
    wants_json: bool,
    service_tier: str | None = None,
) -> Reply:
    names = tool_names or [DEFAULT_TOOL_NAME]
    calls = tuple(
        ToolCall(
            id=f"call_mock_{request_id}_{i}",
            name=names[min(i, len(names) - 1)],
            # "+bad-tool-args": arguments that break a weather tool's schema (tool-call quality tests).
            arguments=BAD_TOOL_ARGUMENTS if "bad-tool-args" in scenario.tags else TOOL_ARGUMENTS[i % 3],
        )
        for i in range(scenario.tools)
    )
    reasoning = scenario.reasoning_pieces()
    return Reply(
        id=f"mock-{request_id}",
        model=model,
        created=created,
        content=scenario.content_pieces(wants_json=wants_json),
        reasoning=reasoning,
        tool_calls=calls,
        prompt_tokens=scenario.prompt_tokens,
        completion_tokens=scenario.completion_tokens(wants_json=wants_json),
        reasoning_tokens=len(reasoning),
        usage=scenario.usage,
        # Like OpenAI: the tier asked for is the tier served, unless "+served-<tier>" says otherwise.
        service_tier=next((t.removeprefix("served-") for t in scenario.tags if t.startswith("served-")), service_tier),
    )


def _sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


# --- OpenAI chat completions ---------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def openai_error(status: int, message: str) -> dict[str, Any]:
    kind = _OPENAI_ERROR_TYPES.get(status, "server_error")
    code = "rate_limit_exceeded" if status == 429 else ("invalid_api_key" if status == 401 else None)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _openai_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _openai_finish(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def openai_body(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.reasoning:
        # DeepSeek/vLLM style: OpenAI-compatible providers put thinking in reasoning_content.
        message["reasoning_content"] = reply.reasoning_text
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments_json}}
            for c in reply.tool_calls
        ]
    body: dict[str, Any] = {
        "id": f"chatcmpl-{reply.id}",
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _openai_finish(reply)}],
    }
    if reply.usage:
        body["usage"] = _openai_usage(reply)
    if reply.service_tier:
        body["service_tier"] = reply.service_tier
    return body


def openai_stream(reply: Reply, *, include_usage: bool) -> list[Frame]:
    base = {
        "id": f"chatcmpl-{reply.id}",
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": "fp_mock",
        **({"service_tier": reply.service_tier} if reply.service_tier else {}),
    }
    # With include_usage OpenAI sends "usage": null on every chunk but the last.
    extra: dict[str, Any] = {"usage": None} if include_usage and reply.usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice], **extra})

    frames = [Frame(chunk({"role": "assistant", "content": "", "refusal": None}))]
    frames += [Frame(chunk({"reasoning_content": piece})) for piece in reply.reasoning]
    frames += [Frame(chunk({"content": piece}), content=True) for piece in reply.content]
    for i, call in enumerate(reply.tool_calls):
        head = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        frames.append(Frame(chunk({"tool_calls": [head]}), content=True))
        frames += [
            Frame(chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})) for part in call.fragments()
        ]
    frames.append(Frame(chunk({}, _openai_finish(reply))))
    if include_usage and reply.usage:
        frames.append(Frame(_sse({**base, "choices": [], "usage": _openai_usage(reply)})))
    frames.append(Frame(b"data: [DONE]\n\n"))
    return frames


def openai_stream_error(status: int, message: str) -> bytes:
    return _sse(openai_error(status, message))


def openai_text_body(reply: Reply) -> dict[str, Any]:
    """Legacy /v1/completions."""
    body: dict[str, Any] = {
        "id": f"cmpl-{reply.id}",
        "object": "text_completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [{"text": reply.text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
    }
    if reply.usage:
        body["usage"] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
    return body


def openai_text_stream(reply: Reply, *, include_usage: bool) -> list[Frame]:
    base = {"id": f"cmpl-{reply.id}", "object": "text_completion", "created": reply.created, "model": reply.model}
    frames = [
        Frame(_sse({**base, "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}]}), True)
        for p in reply.content
    ]
    frames.append(
        Frame(_sse({**base, "choices": [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]}))
    )
    if include_usage and reply.usage:
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        frames.append(Frame(_sse({**base, "choices": [], "usage": usage})))
    frames.append(Frame(b"data: [DONE]\n\n"))
    return frames


# --- Anthropic Messages ----------------------------------------------------------------------------

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
    503: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock"}


def _anthropic_stop(reply: Reply) -> str:
    return "tool_use" if reply.tool_calls else "end_turn"


def _anthropic_usage(reply: Reply, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": reply.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def anthropic_body(reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.reasoning:
        content.append({"type": "thinking", "thinking": reply.reasoning_text, "signature": SIGNATURE})
    if reply.content:
        content.append({"type": "text", "text": reply.text})
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in reply.tool_calls]
    body: dict[str, Any] = {
        "id": f"msg_{reply.id}",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": _anthropic_stop(reply),
        "stop_sequence": None,
    }
    if reply.usage:
        body["usage"] = _anthropic_usage(reply, reply.completion_tokens)
    return body


def anthropic_stream(reply: Reply) -> list[Frame]:
    message: dict[str, Any] = {
        "id": f"msg_{reply.id}",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if reply.usage:
        message["usage"] = _anthropic_usage(reply, 1)
    frames = [Frame(_sse({"type": "message_start", "message": message}, "message_start"))]
    frames.append(Frame(_sse({"type": "ping"}, "ping")))
    index = 0

    def block(start: dict[str, Any], deltas: list[dict[str, Any]], content: bool) -> None:
        nonlocal index
        frames.append(
            Frame(_sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start"))
        )
        for delta in deltas:
            frames.append(
                Frame(
                    _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta"),
                    content=content and delta["type"] in ("text_delta", "input_json_delta"),
                )
            )
        frames.append(Frame(_sse({"type": "content_block_stop", "index": index}, "content_block_stop")))
        index += 1

    if reply.reasoning:
        thinking = [{"type": "thinking_delta", "thinking": p} for p in reply.reasoning]
        block(
            {"type": "thinking", "thinking": "", "signature": ""},
            [*thinking, {"type": "signature_delta", "signature": SIGNATURE}],
            content=False,
        )
    if reply.content:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in reply.content], content=True)
    for call in reply.tool_calls:
        block(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
            [{"type": "input_json_delta", "partial_json": part} for part in call.fragments()],
            content=True,
        )
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": _anthropic_stop(reply), "stop_sequence": None},
    }
    if reply.usage:
        delta["usage"] = {"output_tokens": reply.completion_tokens}
    frames.append(Frame(_sse(delta, "message_delta")))
    frames.append(Frame(_sse({"type": "message_stop"}, "message_stop")))
    return frames


def anthropic_stream_error(status: int, message: str) -> bytes:
    return _sse({"type": "error", "error": anthropic_error(status, message)["error"]}, "error")


# --- Gemini generateContent --------------------------------------------------------------------------

_GEMINI_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def gemini_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _GEMINI_STATUS.get(status, "UNKNOWN")}}


def _gemini_usage(reply: Reply) -> dict[str, Any]:
    # Gemini reports thinking separately: candidatesTokenCount excludes thoughtsTokenCount.
    usage = {
        "promptTokenCount": reply.prompt_tokens,
        "candidatesTokenCount": reply.completion_tokens - reply.reasoning_tokens,
        "totalTokenCount": reply.prompt_tokens + reply.completion_tokens,
    }
    if reply.reasoning_tokens:
        usage["thoughtsTokenCount"] = reply.reasoning_tokens
    return usage


def _gemini_chunk(reply: Reply, parts: list[dict[str, Any]], finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": reply.model, "responseId": reply.id}
    if finish and reply.usage:
        chunk["usageMetadata"] = _gemini_usage(reply)
    return chunk


def _gemini_call_parts(reply: Reply) -> list[dict[str, Any]]:
    return [{"functionCall": {"name": c.name, "args": c.arguments}} for c in reply.tool_calls]


def gemini_body(reply: Reply) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if reply.reasoning:
        parts.append({"text": reply.reasoning_text, "thought": True})
    if reply.content:
        parts.append({"text": reply.text})
    parts += _gemini_call_parts(reply)
    return _gemini_chunk(reply, parts, finish=True)


def gemini_stream(reply: Reply) -> list[Frame]:
    frames = [Frame(_sse(_gemini_chunk(reply, [{"text": p, "thought": True}], False))) for p in reply.reasoning]
    frames += [Frame(_sse(_gemini_chunk(reply, [{"text": p}], False)), content=True) for p in reply.content]
    # Gemini sends function calls whole, all in one chunk; the last chunk carries finishReason and usage.
    last = _gemini_call_parts(reply) or [{"text": ""}]
    frames.append(Frame(_sse(_gemini_chunk(reply, last, True)), content=bool(reply.tool_calls)))
    return frames


def gemini_stream_error(status: int, message: str) -> bytes:
    return _sse(gemini_error(status, message))


def gemini_embeddings_body(sizes: list[int], *, batch: bool) -> dict[str, Any]:
    """Vector i, element d = (i + 1) / 8 + d / 4 (exact in float32), as the OpenAI-style mock answers;
    embedContent answers `embedding`, batchEmbedContents `embeddings`, neither any usage."""
    vectors = [{"values": [round((i + 1) * 0.125 + d * 0.25, 6) for d in range(size)]} for i, size in enumerate(sizes)]
    return {"embeddings": vectors} if batch else {"embedding": vectors[0]}
