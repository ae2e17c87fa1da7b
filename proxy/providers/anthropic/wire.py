"""Anthropic Messages API (`POST /v1/messages`), translated to and from our OpenAI-shaped format.

The differences that matter: the system prompt is a top-level field; roles must alternate, so
consecutive same-role messages are merged and tool results travel as `tool_result` blocks in a
user turn; `max_tokens` is mandatory; extended thinking is a token budget and its blocks carry a
signature that must come back verbatim on the next turn (we carry them in `reasoning_details`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Required, TypedDict

from billing.pricing import Usage
from proxy.providers._common import (
    arguments_object,
    budget_from_effort,
    classify,
    dumps,
    merge_details,
    named_content,
    parse_data_url,
    reasoning_of,
    stop_list,
)
from proxy.providers.base import ProviderError
from proxy.schemas import ChatRequest, Message, ReasoningDetail

API_VERSION = "2023-06-01"
REASONING_FORMAT = "anthropic-claude-v1"
DEFAULT_MAX_TOKENS = 4096
THINKING_DEFAULT_MAX_TOKENS = 16384  # room for a useful budget when the client gave no cap
MIN_THINKING_BUDGET = 1024  # Anthropic refuses smaller budgets

FINISH: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# In-stream errors carry no HTTP status; these are the statuses Anthropic uses for each type.
ERROR_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_TOOL_ID_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
Block = dict[str, Any]


class AnthropicMessage(TypedDict):
    role: str  # "user" | "assistant"
    content: list[Block]


class AnthropicRequest(TypedDict, total=False):
    model: Required[str]
    max_tokens: Required[int]
    messages: Required[list[AnthropicMessage]]
    system: list[Block]
    tools: list[Block]
    tool_choice: Block
    thinking: Block
    stop_sequences: list[str]
    temperature: float
    top_p: float
    top_k: int
    metadata: dict[str, str]
    cache_control: Mapping[str, Any]
    output_config: dict[str, Any]
    stream: bool


def tool_id(call_id: str) -> str:
    """Anthropic requires ids matching ^[a-zA-Z0-9_-]+$; others' ids (e.g. "functions.x:0") are mapped
    the same way in tool_use and tool_result, so the pair still matches."""
    return _TOOL_ID_INVALID.sub("_", call_id) or "call"


def _with_cache(block: Block, part: Mapping[str, Any]) -> Block:
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _part_block(part: Mapping[str, Any]) -> Block | None:
    kind = part.get("type")
    if kind == "text":
        text = part.get("text") or ""
        return _with_cache({"type": "text", "text": text}, part) if text else None
    if kind == "image_url":
        url = part["image_url"]["url"]
        data = parse_data_url(url)
        source = {"type": "base64", "media_type": data[0], "data": data[1]} if data else {"type": "url", "url": url}
        return _with_cache({"type": "image", "source": source}, part)
    if kind == "file":
        file_data = part["file"].get("file_data") or ""
        data = parse_data_url(file_data)
        if data:
            source = {"type": "base64", "media_type": data[0], "data": data[1]}
        else:
            source = {"type": "url", "url": file_data}
        return _with_cache({"type": "document", "source": source}, part)
    raise ProviderError(400, f"Anthropic does not accept {kind} content", error_type="invalid_request")


def _content_blocks(content: Any) -> list[Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in (_part_block(p) for p in content) if b is not None]


def _thinking_blocks(details: list[ReasoningDetail]) -> list[Block]:
    blocks: list[Block] = []
    for detail in merge_details(details):
        # Other providers' reasoning is meaningless (and rejected) here; unsigned thinking too.
        if detail.get("format") not in (REASONING_FORMAT, None):
            continue
        if detail["type"] == "reasoning.text" and detail.get("signature"):
            blocks.append({"type": "thinking", "thinking": detail.get("text") or "", "signature": detail["signature"]})
        elif detail["type"] == "reasoning.encrypted" and detail.get("data"):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
    return blocks


def _assistant_blocks(message: Message) -> list[Block]:
    blocks = _thinking_blocks(message.get("reasoning_details") or [])
    blocks.extend(_content_blocks(named_content(message)))
    for call in message.get("tool_calls") or ():
        fn = call["function"]
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id(call["id"]),
                "name": fn["name"],
                "input": arguments_object(fn["arguments"]),
            }
        )
    return blocks


def _tool_result(message: Message) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": tool_id(message.get("tool_call_id") or "")}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content:
        block["content"] = _content_blocks(content)
    return block


def convert_messages(messages: list[Message]) -> tuple[list[Block], list[AnthropicMessage]]:
    system: list[Block] = []
    out: list[AnthropicMessage] = []

    def push(role: str, blocks: list[Block]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            system.extend(_content_blocks(message.get("content")))
        elif role == "user":
            push("user", _content_blocks(named_content(message)))
        elif role == "assistant":
            push("assistant", _assistant_blocks(message))
        elif role == "tool":
            push("user", [_tool_result(message)])
    # A trailing assistant turn is a prefill, and Anthropic refuses one ending in whitespace.
    if out and out[-1]["role"] == "assistant" and out[-1]["content"][-1].get("type") == "text":
        last = out[-1]["content"][-1]
        last["text"] = last["text"].rstrip()
    return system, out


def _tools(request: ChatRequest) -> list[Block]:
    tools: list[Block] = []
    for tool in request.get("tools") or ():
        if tool.get("type") != "function" or "function" not in tool:
            continue  # server tools of other vendors have no Anthropic equivalent
        fn = tool["function"]
        block: Block = {
            "name": fn["name"],
            "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            block["description"] = fn["description"]
        tools.append(_with_cache(block, tool))
    return tools


def _tool_choice(request: ChatRequest) -> Block | None:
    choice = request.get("tool_choice")
    if choice is None and "parallel_tool_calls" not in request:
        return None
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        block: Block = {"type": "any"}
    elif isinstance(choice, dict):
        block = {"type": "tool", "name": choice["function"]["name"]}
    else:
        block = {"type": "auto"}
    if request.get("parallel_tool_calls") is False:
        block["disable_parallel_tool_use"] = True
    return block


def thinking_config(request: ChatRequest, *, forced_tool: bool) -> tuple[Block | None, int]:
    """The `thinking` block and the `max_tokens` to send (contract 2.8 share rule, Anthropic's limits).

    A forced tool choice cannot be combined with thinking; the forced tool wins because it changes
    the shape of the answer the client expects. A client cap too small for the minimum budget
    also disables thinking rather than raising the cap the client is paying for.
    """
    client_max = request.get("max_tokens")
    reasoning = reasoning_of(request)
    if reasoning is None or forced_tool:
        return None, client_max or DEFAULT_MAX_TOKENS
    explicit = reasoning.get("max_tokens")
    if explicit:
        budget = max(MIN_THINKING_BUDGET, explicit)
        max_tokens = client_max or budget + DEFAULT_MAX_TOKENS
    else:
        max_tokens = client_max or THINKING_DEFAULT_MAX_TOKENS
        budget = max(MIN_THINKING_BUDGET, budget_from_effort(reasoning.get("effort"), max_tokens))
    if budget >= max_tokens:
        budget = max_tokens - 1
        if budget < MIN_THINKING_BUDGET:
            return None, max_tokens
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _json_instruction(request: ChatRequest) -> Block | None:
    # No structured-output switch on every Claude model: ask in the system prompt (contract 2.7
    # says JSON mode needs an instruction anyway).
    fmt: Mapping[str, Any] = request.get("response_format") or {}
    if fmt.get("type") == "json_object":
        return {"type": "text", "text": "Respond with a single valid JSON object and nothing else."}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        text = "Respond with a single JSON object, and nothing else, that validates against this JSON Schema:\n"
        return {"type": "text", "text": text + dumps(schema).decode()}
    return None


def build_body(request: ChatRequest, model: str, *, stream: bool) -> AnthropicRequest:
    system, messages = convert_messages(request["messages"])
    tool_choice = _tool_choice(request)
    forced = tool_choice is not None and tool_choice["type"] in ("any", "tool")
    thinking, max_tokens = thinking_config(request, forced_tool=forced)
    body: AnthropicRequest = {"model": model, "max_tokens": max_tokens, "messages": messages}
    instruction = _json_instruction(request)
    if instruction:
        system.append(instruction)
    if system:
        body["system"] = system
    tools = _tools(request)
    if tools:
        body["tools"] = tools
        if tool_choice:
            body["tool_choice"] = tool_choice
    if thinking:
        body["thinking"] = thinking
    else:
        # Thinking refuses sampling changes; without it Claude's temperature range is 0..1.
        if "temperature" in request:
            body["temperature"] = min(max(request["temperature"], 0.0), 1.0)
        if "top_k" in request:
            body["top_k"] = request["top_k"]
    if "top_p" in request and (not thinking or request["top_p"] >= 0.95):
        body["top_p"] = request["top_p"]
    stops = stop_list(request.get("stop"))
    if stops:
        body["stop_sequences"] = stops
    if request.get("user"):
        body["metadata"] = {"user_id": request["user"]}
    if request.get("cache_control"):
        body["cache_control"] = request["cache_control"]
    if request.get("verbosity"):
        verbosity = request["verbosity"]
        body["output_config"] = {"effort": verbosity if verbosity in ("low", "medium", "high") else "high"}
    if stream:
        body["stream"] = True
    return body


def usage_from(raw: Mapping[str, Any]) -> Usage:
    read = int(raw.get("cache_read_input_tokens") or 0)
    write = int(raw.get("cache_creation_input_tokens") or 0)
    return Usage(
        prompt_tokens=int(raw.get("input_tokens") or 0) + read + write,
        completion_tokens=int(raw.get("output_tokens") or 0),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def _error_message(raw: object) -> tuple[str | None, str | None]:
    if isinstance(raw, dict) and isinstance(raw.get("error"), dict):
        err = raw["error"]
        return err.get("message"), err.get("type")
    return None, None


def error_from_body(raw: object, status: int | None = None, retry_after: float | None = None) -> ProviderError:
    message, kind = _error_message(raw)
    upstream = status if status is not None else ERROR_STATUS.get(kind or "", 500)
    return classify(upstream, message, raw, retry_after=retry_after, overloaded=kind == "overloaded_error")


def tool_call_out(block: Mapping[str, Any], index: int) -> dict[str, Any]:
    return {
        "index": index,
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": dumps(block.get("input") or {}).decode()},
    }


def message_from_blocks(content: list[Mapping[str, Any]]) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            thoughts.append(block.get("thinking") or "")
            details.append(
                {
                    "type": "reasoning.text",
                    "text": block.get("thinking") or "",
                    "signature": block.get("signature"),
                    "format": REASONING_FORMAT,
                    "index": len(details),
                }
            )
        elif kind == "redacted_thinking":
            details.append(
                {
                    "type": "reasoning.encrypted",
                    "data": block.get("data"),
                    "format": REASONING_FORMAT,
                    "index": len(details),
                }
            )
        elif kind == "tool_use":
            calls.append(tool_call_out(block, len(calls)))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
        "reasoning": "".join(thoughts) if thoughts else None,
    }
    if details:
        message["reasoning_details"] = details
    if calls:
        message["tool_calls"] = calls
    return message
