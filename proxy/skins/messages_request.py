"""Anthropic Messages request -> the core's chat-completions body (pure translation).

Tool results arrive as `tool_result` blocks inside a user turn; chat wants them as `tool` messages
right after the assistant turn that called them, so they are split out ahead of the turn's other
content. Thinking blocks become `reasoning_details` so an Anthropic upstream gets them back with
their signatures unchanged; details another family produced come back through `details.unpack`.
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.skins.base import SkinRequestError
from proxy.skins.details import ANTHROPIC_FORMAT, unpack

# OpenRouter's own fields, accepted on /messages as on chat.
PASSTHROUGH = (
    "model",
    "models",
    "provider",
    "plugins",
    "route",
    "session_id",
    "trace",
    "user",
    "transforms",
    "stream",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "cache_control",
)


def _source_url(block: dict[str, Any], what: str) -> tuple[str, str | None]:
    """(url or data: URL, media type) of an image or document source."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise SkinRequestError(f"{what}.source must be an object")
    kind = source.get("type")
    if kind == "base64":
        media = source.get("media_type") or "application/octet-stream"
        return f"data:{media};base64,{source.get('data') or ''}", media
    if kind == "url" and isinstance(source.get("url"), str):
        return source["url"], None
    raise SkinRequestError(f"{what}.source.type {kind!r} is not supported (use base64 or url)")


def _with_cache(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    if block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _part(block: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A user-side content block as a chat content part."""
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise SkinRequestError(f"{where}.text must be a string")
        return _with_cache({"type": "text", "text": block["text"]}, block)
    if kind == "image":
        url, _ = _source_url(block, where)
        return _with_cache({"type": "image_url", "image_url": {"url": url}}, block)
    if kind == "document":
        source = block.get("source") or {}
        if isinstance(source, dict) and source.get("type") == "text":
            return _with_cache({"type": "text", "text": str(source.get("data") or "")}, block)
        url, _ = _source_url(block, where)
        filename = block.get("title") or "document.pdf"
        return _with_cache({"type": "file", "file": {"filename": filename, "file_data": url}}, block)
    raise SkinRequestError(f"{where}.type {kind!r} is not supported here")


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(block.get("tool_use_id"), str):
        raise SkinRequestError(f"{where}.tool_use_id must be a string")
    content = block.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):
        parts = [_part(b, f"{where}.content") for b in content if isinstance(b, dict)]
        content = [p for p in parts if p is not None]
        if all(p["type"] == "text" and "cache_control" not in p for p in content):
            content = "\n".join(p["text"] for p in content)
    elif not isinstance(content, str):
        raise SkinRequestError(f"{where}.content must be a string or a list of blocks")
    if block.get("is_error") and isinstance(content, str):
        # Chat has no error flag on a tool result: say it in the text the model reads.
        content = f"Error: {content}"
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}


def _thinking_detail(block: dict[str, Any], index: int) -> dict[str, Any]:
    if block.get("type") == "redacted_thinking":
        data = str(block.get("data") or "")
        packed = unpack(data)
        if packed is not None:
            return {**packed, "index": index}
        return {"type": "reasoning.encrypted", "data": data, "format": ANTHROPIC_FORMAT, "index": index}
    signature = str(block.get("signature") or "")
    packed = unpack(signature)
    if packed is not None:
        return {**packed, "text": block.get("thinking") or "", "index": index}
    return {
        "type": "reasoning.text",
        "text": block.get("thinking") or "",
        "signature": signature or None,
        "format": ANTHROPIC_FORMAT,
        "index": index,
    }


def _assistant(blocks: list[Any], where: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        if not isinstance(block, dict):
            raise SkinRequestError(f"{at} must be an object")
        kind = block.get("type")
        if kind == "text":
            part = _part(block, at)
            if part is not None:
                texts.append(part)
        elif kind in ("thinking", "redacted_thinking"):
            details.append(_thinking_detail(block, len(details)))
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise SkinRequestError(f"{at} (tool_use) needs id and name")
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block["name"], "arguments": arguments}
            calls.append({"id": block["id"], "type": "function", "function": function})
        else:
            raise SkinRequestError(f"{at}.type {kind!r} is not supported in an assistant turn")
    message: dict[str, Any] = {"role": "assistant"}
    if any("cache_control" in t for t in texts):
        message["content"] = texts
    else:
        message["content"] = "".join(t["text"] for t in texts) if texts or not calls else None
    if details:
        message["reasoning_details"] = details
        thoughts = [d.get("text") for d in details if d.get("text")]
        if thoughts:
            message["reasoning"] = "".join(str(t) for t in thoughts)
    if calls:
        message["tool_calls"] = calls
    return message


def _user(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        at = f"{where}[{i}]"
        if not isinstance(block, dict):
            raise SkinRequestError(f"{at} must be an object")
        if block.get("type") == "tool_result":
            results.append(_tool_result(block, at))
        else:
            part = _part(block, at)
            if part is not None:
                parts.append(part)
    out = list(results)
    if parts:
        plain = all(p["type"] == "text" and "cache_control" not in p for p in parts)
        out.append({"role": "user", "content": "\n".join(p["text"] for p in parts) if plain else parts})
    return out


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if not isinstance(system, list):
        raise SkinRequestError("system must be a string or a list of text blocks")
    parts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise SkinRequestError(f"system[{i}] must be a text block")
        parts.append(_with_cache({"type": "text", "text": block["text"]}, block))
    return [{"role": "system", "content": parts}] if parts else []


def _messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise SkinRequestError("messages: field required (a non-empty list)")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise SkinRequestError(f"{where} must be an object")
        role = message.get("role")
        content = message.get("content")
        if role not in ("user", "assistant"):
            raise SkinRequestError(f"{where}.role must be user or assistant")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise SkinRequestError(f"{where}.content must be a string or a list of blocks")
        if role == "assistant":
            out.append(_assistant(content, f"{where}.content"))
        else:
            out.extend(_user(content, f"{where}.content"))
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise SkinRequestError("tools must be a list")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise SkinRequestError(f"tools[{i}] needs a name")
        if tool.get("type") not in (None, "custom"):
            continue  # Anthropic's server tools (web search, bash...) have no chat equivalent
        function: dict[str, Any] = {
            "name": tool["name"],
            "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append(_with_cache({"type": "function", "function": function}, tool))
    return out


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        raise SkinRequestError("tool_choice must be an object")
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise SkinRequestError("tool_choice.type must be auto, any, tool (with name) or none")
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def _thinking(thinking: Any) -> dict[str, Any]:
    if not isinstance(thinking, dict):
        raise SkinRequestError("thinking must be an object")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise SkinRequestError("thinking.budget_tokens must be a positive integer")
        return {"max_tokens": budget}
    if kind == "adaptive":
        return {"enabled": True}
    if kind == "disabled":
        return {"enabled": False}
    raise SkinRequestError("thinking.type must be enabled, adaptive or disabled")


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    chat: dict[str, Any] = {k: body[k] for k in PASSTHROUGH if body.get(k) is not None}
    chat["messages"] = _system(body.get("system")) + _messages(body.get("messages"))
    stops = body.get("stop_sequences")
    if stops:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise SkinRequestError("stop_sequences must be a list of strings")
        chat["stop"] = stops
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and "user" not in chat:
        chat["user"] = metadata["user_id"]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
        if not chat["tools"]:
            del chat["tools"]
    if body.get("tool_choice") is not None and chat.get("tools"):
        _tool_choice(body["tool_choice"], chat)
    if body.get("thinking") is not None:
        chat["reasoning"] = _thinking(body["thinking"])
    return chat
