"""Parse and normalize a completion request body. Every rejection is a 400 that says what is wrong.

The result is what adapters see: OpenAI-shaped, with `max_completion_tokens` folded into
`max_tokens`, the reasoning controls folded into one `reasoning` object, and the OpenRouter-only
fields (routing, plugins, accounting switches) taken out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import orjson

from proxy.gateway.errors import GatewayError
from proxy.plugins.file_parser import FileParserError, FileParsing, file_parsing_for
from proxy.plugins.web import WebOptions, WebSearchError, web_options

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
EFFORTS = frozenset({"max", "xhigh", "high", "medium", "low", "minimal", "none"})
# Consumed by the gateway itself; never forwarded upstream.
ROUTER_FIELDS = frozenset(
    {
        "model",
        "models",
        "route",
        "provider",
        "plugins",
        "transforms",
        "usage",
        "stream_options",
        "session_id",
        "metadata",
        "trace",
        "debug",
        "preset",
        "reasoning_effort",
        "include_reasoning",
        "max_completion_tokens",
        "prompt",
        "messages",
        "reasoning",
        "stream",
    }
)
# Request parameters in the catalog's `supported_parameters` vocabulary.
PARAM_NAMES = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "top_a",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "max_tokens",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "prediction",
        "seed",
        "response_format",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "web_search_options",
        "verbosity",
    }
)


@dataclass(slots=True)
class ParsedRequest:
    body: dict[str, Any]  # what adapters translate
    models: tuple[str, ...]
    provider: object  # the raw `provider` object; routing parses it strictly
    stream: bool
    max_tokens: int | None
    params: frozenset[str]
    middle_out: bool | None  # True asked for, False disabled, None: routing's default (on for <=8k endpoints)
    route: str | None
    auto_allowed: tuple[str, ...]
    auto_excluded: tuple[str, ...]
    user: str
    legacy_completion: bool  # came in on /completions: answer in text_completion shape
    # The request's plugin objects (each checked to be an object with an id): response-healing reads them.
    plugins: tuple[dict[str, Any], ...] = ()
    web: WebOptions | None = None  # the web search plugin (or `:online`): proxy/plugins/web
    files: FileParsing | None = None  # the PDFs the file-parser plugin handles (proxy/plugins/file_parser.py)
    session_id: str = ""  # sticky routing's conversation key: `session_id` (admission adds `x-session-id`)


def _number(lo: float, hi: float, *, lo_open: bool = False) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GatewayError(400, f"{name} must be a number")
        if value < lo or value > hi or (lo_open and value == lo):
            raise GatewayError(400, f"{name} must be between {lo} and {hi}")

    return check


def _integer(lo: int, hi: int | None = None) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GatewayError(400, f"{name} must be an integer")
        if value < lo or (hi is not None and value > hi):
            raise GatewayError(
                400, f"{name} must be an integer between {lo} and {hi}" if hi else f"{name} must be >= {lo}"
            )

    return check


def _of(kind: type | tuple[type, ...], label: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, kind):
            raise GatewayError(400, f"{name} must be {label}")

    return check


def _stop(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or len(value) > 4 or not all(isinstance(s, str) for s in value):
        raise GatewayError(400, "stop must be a string or a list of at most 4 strings")


def _tool_choice(name: str, value: Any) -> None:
    if value in ("none", "auto", "required"):
        return
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return
    raise GatewayError(400, 'tool_choice must be "none", "auto", "required" or {"type": "function", ...}')


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise GatewayError(400, "tools must be a list")
    for tool in value:
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise GatewayError(400, "each tool must be an object with a type")
        if tool["type"] == "function":
            fn = tool.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
                raise GatewayError(400, "a function tool needs function.name")


def _response_format(name: str, value: Any) -> None:
    if not isinstance(value, dict) or value.get("type") not in {
        "text",
        "json_object",
        "json_schema",
        "grammar",
        "python",
    }:
        raise GatewayError(400, "response_format.type must be text, json_object or json_schema")
    if value["type"] == "json_schema" and not isinstance(value.get("json_schema"), dict):
        raise GatewayError(400, "response_format json_schema needs a json_schema object")


CHECKS: dict[str, Callable[[str, Any], None]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1, lo_open=True),
    "top_k": _integer(0),
    "min_p": _number(0, 1),
    "top_a": _number(0, 1),
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "repetition_penalty": _number(0, 2, lo_open=True),
    "seed": _integer(-(2**63)),
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "logprobs": _of(bool, "a boolean"),
    "top_logprobs": _integer(0, 20),
    "logit_bias": _of(dict, "an object"),
    "stop": _stop,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _of(bool, "a boolean"),
    "response_format": _response_format,
    "stream": _of(bool, "a boolean"),
    "user": _of(str, "a string"),
    "models": _of(list, "a list of model ids"),
    "route": _of((str, type(None)), '"fallback" or "sort"'),
    "transforms": _of(list, "a list of strings"),
    "plugins": _of(list, "a list of objects"),
    "include_reasoning": _of(bool, "a boolean"),
    "reasoning": _of(dict, "an object"),
    "metadata": _of(dict, "an object"),
    "verbosity": _of(str, "a string"),
}


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"Invalid JSON in request body: {exc.args[0]}") from exc
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object")
    return body


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "messages must be a non-empty list")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise GatewayError(400, f"messages[{i}] must be an object")
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise GatewayError(400, f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}")
        content = msg.get("content")
        if content is not None and not isinstance(content, str | list):
            raise GatewayError(400, f"messages[{i}].content must be a string or a list of parts")
        if isinstance(content, list):
            for j, part in enumerate(content):
                _check_part(f"messages[{i}].content[{j}]", part)
        if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
            raise GatewayError(400, f"messages[{i}] (tool) needs tool_call_id")
        for field in ("name", "reasoning", "reasoning_content", "refusal"):
            if msg.get(field) is not None and not isinstance(msg[field], str):
                raise GatewayError(400, f"messages[{i}].{field} must be a string")
        if msg.get("tool_calls") is not None:
            _check_tool_calls(f"messages[{i}].tool_calls", msg["tool_calls"])
        if msg.get("reasoning_details") is not None:
            _check_reasoning_details(f"messages[{i}].reasoning_details", msg["reasoning_details"])


# Where a content part keeps its payload, by type; the payload is a string or an object.
_PART_PAYLOADS = {
    "image_url": "image_url",
    "input_audio": "input_audio",
    "file": "file",
    "video_url": "video_url",
    "input_video": "video_url",
}


def _check_part(where: str, part: Any) -> None:
    """Structurally invalid content is refused here, before any adapter (or provider) sees it."""
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise GatewayError(400, f"{where} must be an object with a type")
    kind = part["type"]
    if kind == "text" and not isinstance(part.get("text"), str):
        raise GatewayError(400, f"{where}.text must be a string")
    payload_key = _PART_PAYLOADS.get(kind)
    if payload_key is not None:
        payload = part.get(payload_key)
        if not isinstance(payload, dict | str):
            raise GatewayError(400, f"{where}.{payload_key} must be an object")
        if kind in ("image_url", "video_url", "input_video"):
            url = payload if isinstance(payload, str) else payload.get("url")
            if not isinstance(url, str):
                raise GatewayError(400, f"{where}.{payload_key}.url must be a string")
        if isinstance(payload, dict):
            for key, value in payload.items():
                if value is not None and not isinstance(value, str | int | float | bool):
                    raise GatewayError(400, f"{where}.{payload_key}.{key} must be a string")


def _check_tool_calls(where: str, calls: Any) -> None:
    if not isinstance(calls, list):
        raise GatewayError(400, f"{where} must be a list")
    for k, call in enumerate(calls):
        if not isinstance(call, dict):
            raise GatewayError(400, f"{where}[{k}] must be an object")
        if not isinstance(call.get("id"), str):
            raise GatewayError(400, f"{where}[{k}].id must be a string")
        fn = call.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise GatewayError(400, f"{where}[{k}].function must be an object with a name")
        if not isinstance(fn.get("arguments"), str):
            raise GatewayError(400, f"{where}[{k}].function.arguments must be a JSON string")


def _check_reasoning_details(where: str, details: Any) -> None:
    """Carried back to providers (signatures, encrypted blocks): each an object with a string type."""
    if not isinstance(details, list):
        raise GatewayError(400, f"{where} must be a list")
    for k, detail in enumerate(details):
        if not isinstance(detail, dict) or not isinstance(detail.get("type"), str):
            raise GatewayError(400, f"{where}[{k}] must be an object with a type")
        for field in ("text", "data", "signature", "format", "summary", "id"):
            if detail.get(field) is not None and not isinstance(detail[field], str):
                raise GatewayError(400, f"{where}[{k}].{field} must be a string")


def _reasoning(body: dict[str, Any]) -> dict[str, Any] | None:
    raw = body.get("reasoning") or {}
    effort = raw.get("effort")
    shorthand = body.get("reasoning_effort")
    if shorthand is not None:
        if effort is not None and effort != shorthand:
            raise GatewayError(400, "reasoning_effort conflicts with reasoning.effort")
        effort = shorthand
    if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
        raise GatewayError(400, f"reasoning effort must be one of {', '.join(sorted(EFFORTS))}")
    max_tokens = raw.get("max_tokens")
    if max_tokens is not None:
        CHECKS["max_tokens"]("reasoning.max_tokens", max_tokens)
    exclude = raw.get("exclude", False)
    if body.get("include_reasoning") is False:
        exclude = True
    if not isinstance(exclude, bool):
        raise GatewayError(400, "reasoning.exclude must be a boolean")
    enabled = raw.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise GatewayError(400, "reasoning.enabled must be a boolean")
    asked = bool(raw) or shorthand is not None or "include_reasoning" in body
    if not asked:
        return None
    if enabled is None:
        enabled = effort is not None or max_tokens is not None or body.get("include_reasoning") is True
    if effort == "none":
        enabled = False
    return {
        "enabled": enabled,
        "effort": effort if effort != "none" else None,
        "max_tokens": max_tokens,
        "exclude": exclude,
    }


def _plugins(body: dict[str, Any]) -> tuple[bool | None, tuple[str, ...], tuple[str, ...]]:
    """(middle-out: True/False/None for the default, auto-router allowed models, excluded models)."""
    transforms = body.get("transforms")
    if transforms is not None and any(not isinstance(t, str) for t in transforms):
        raise GatewayError(400, "transforms must be a list of strings")
    middle: bool | None = None
    if transforms is not None:
        middle = "middle-out" in transforms
    allowed: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    for plugin in body.get("plugins") or []:
        if not isinstance(plugin, dict) or not isinstance(plugin.get("id"), str):
            raise GatewayError(400, "each plugin must be an object with an id")
        if plugin["id"] == "context-compression":
            middle = plugin.get("enabled", True) is not False
        elif plugin["id"] in ("auto-router", "auto-beta-router"):
            allowed = _model_list(plugin, "allowed_models")
            excluded = _model_list(plugin, "excluded_models")
    return middle, allowed, excluded


def _model_list(plugin: dict[str, Any], name: str) -> tuple[str, ...]:
    value = plugin.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise GatewayError(400, f"plugins[{plugin['id']}].{name} must be a list of model ids")
    return tuple(value)


def parse_request(raw: bytes, *, legacy_completion: bool = False) -> ParsedRequest:
    body = parse_json(raw)
    for name, value in body.items():
        check = CHECKS.get(name)
        if check is not None and value is not None:
            check(name, value)

    messages = body.get("messages")
    prompt = body.get("prompt")
    if (messages is None) == (prompt is None):
        raise GatewayError(400, "Exactly one of messages or prompt is required")
    if prompt is not None:
        if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
            prompt = "".join(prompt)
        if not isinstance(prompt, str):
            raise GatewayError(400, "prompt must be a string")
        messages = [{"role": "user", "content": prompt}]
    _check_messages(messages)

    model = body.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise GatewayError(400, "model must be a model id string")
    fallbacks = body.get("models") or []
    if any(not isinstance(m, str) or not m for m in fallbacks):
        raise GatewayError(400, "models must be a list of model id strings")
    if body.get("route") not in (None, "fallback", "sort"):
        raise GatewayError(400, 'route must be "fallback" or "sort"')
    ordered = ([model] if model else []) + [m for m in fallbacks if m != model]
    try:
        web, ordered = web_options(body.get("plugins"), ordered)
    except WebSearchError as exc:
        raise GatewayError(exc.status, exc.message) from exc
    if not ordered:
        ordered = ["openrouter/auto"]

    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    upstream: dict[str, Any] = {k: v for k, v in body.items() if k not in ROUTER_FIELDS and v is not None}
    upstream["messages"] = messages
    if max_tokens is not None:
        upstream["max_tokens"] = max_tokens
    reasoning = _reasoning(body)
    if reasoning is not None:
        upstream["reasoning"] = reasoning

    params = {k for k in upstream if k in PARAM_NAMES}
    if not upstream.get("tools"):
        params.discard("tools")
        params.discard("tool_choice")
    if reasoning is not None and reasoning["enabled"]:
        params.add("reasoning")
    rf = upstream.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        params.add("structured_outputs")

    middle, auto_allowed, auto_excluded = _plugins(body)
    session_id = body.get("session_id") or ""
    if not isinstance(session_id, str) or len(session_id) > 256:
        raise GatewayError(400, "session_id must be a string of at most 256 characters")
    try:
        files = file_parsing_for(body.get("plugins") or [], cast(list[dict[str, Any]], messages))  # checked above
    except FileParserError as exc:
        raise GatewayError(exc.status, exc.message) from exc
    return ParsedRequest(
        body=upstream,
        models=tuple(ordered),
        provider=body.get("provider"),
        stream=bool(body.get("stream", False)),
        max_tokens=max_tokens,
        params=frozenset(params),
        middle_out=middle,
        route=body.get("route"),
        auto_allowed=auto_allowed,
        auto_excluded=auto_excluded,
        user=body.get("user") or "",
        legacy_completion=legacy_completion,
        plugins=tuple(body.get("plugins") or ()),
        web=web,
        files=files,
        session_id=session_id,
    )
