"""OpenAI Responses request -> the core's chat-completions body (pure translation).

Stateless, as OpenRouter's: the whole conversation comes in `input` every time, so `store: true`,
`previous_response_id` and `conversation` are refused. Items map one to one onto chat messages:
function_call items join the assistant turn before them, function_call_output items become tool
messages, and a reasoning item's details ride on the next assistant turn (the core's
`reasoning_details`), so signatures reach the upstream they came from unchanged.
"""

from __future__ import annotations

from typing import Any

from proxy.skins.base import SkinRequestError
from proxy.skins.details import unpack_all

STATELESS = (
    "This API is stateless: store must be false or omitted and previous_response_id/conversation are not "
    "supported. Send the whole conversation in input on every request."
)
PASSTHROUGH = (
    "model",
    "models",
    "provider",
    "plugins",
    "route",
    "session_id",
    "trace",
    "transforms",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "parallel_tool_calls",
    "metadata",
    "cache_control",
)
TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})


def _part(part: Any, where: str) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise SkinRequestError(f"{where} must be an object")
    kind = part.get("type")
    if kind in TEXT_PARTS:
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise SkinRequestError(
                f"{where}.image_url must be a URL (file_id needs stored files, which this API lacks)"
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data") or part.get("file_url")
        if not isinstance(data, str):
            raise SkinRequestError(f"{where} needs file_data or file_url")
        return {"type": "file", "file": {"filename": part.get("filename") or "file", "file_data": data}}
    raise SkinRequestError(f"{where}.type {kind!r} is not supported")


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise SkinRequestError(f"{where} must be a string or a list of parts")
    parts = [_part(p, f"{where}[{i}]") for i, p in enumerate(content)]
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _reasoning_details(item: dict[str, Any]) -> list[dict[str, Any]]:
    encrypted = item.get("encrypted_content")
    if isinstance(encrypted, str):
        packed = unpack_all(encrypted)
        if packed is not None:
            return packed
    texts = [p.get("text") or "" for p in item.get("content") or () if isinstance(p, dict)]
    summaries = [p.get("text") or "" for p in item.get("summary") or () if isinstance(p, dict)]
    fmt = item.get("format") or "openai-responses-v1"
    details: list[dict[str, Any]] = []
    if texts or item.get("signature"):
        details.append(
            {"type": "reasoning.text", "text": "".join(texts), "signature": item.get("signature"), "format": fmt}
        )
    elif summaries:
        details.append({"type": "reasoning.summary", "summary": "".join(summaries), "format": fmt})
    if isinstance(encrypted, str) and encrypted:
        details.append({"type": "reasoning.encrypted", "data": encrypted, "id": item.get("id"), "format": fmt})
    for index, detail in enumerate(details):
        detail["index"] = index
    return details


class _Builder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []  # reasoning details waiting for their assistant turn

    def assistant(self) -> dict[str, Any]:
        """The open assistant turn (a new one unless the last message is an assistant turn)."""
        last = self.messages[-1] if self.messages else None
        if last is None or last["role"] != "assistant":
            last = {"role": "assistant", "content": None}
            self.messages.append(last)
        if self.pending:
            last.setdefault("reasoning_details", []).extend(self.pending)
            thoughts = "".join(str(d.get("text") or d.get("summary") or "") for d in self.pending)
            if thoughts:
                last["reasoning"] = (last.get("reasoning") or "") + thoughts
            self.pending = []
        return last

    def item(self, item: Any, where: str) -> None:
        if isinstance(item, dict) and item.get("type") in (None, "message"):
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise SkinRequestError(f"{where}.role must be user, system, developer or assistant")
            content = _content(item.get("content"), f"{where}.content")
            if role == "assistant":
                turn = self.assistant()
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                turn["content"] = (turn.get("content") or "") + text
            else:
                self.messages.append({"role": role, "content": content})
            return
        if not isinstance(item, dict):
            raise SkinRequestError(f"{where} must be an object")
        kind = item["type"]
        if kind == "function_call":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("name"), str):
                raise SkinRequestError(f"{where} (function_call) needs call_id and name")
            function = {"name": item["name"], "arguments": str(item.get("arguments") or "{}")}
            call = {"id": item["call_id"], "type": "function", "function": function}
            self.assistant().setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise SkinRequestError(f"{where} (function_call_output) needs call_id")
            output = item.get("output")
            content = _content(output if output is not None else "", f"{where}.output")
            self.messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        elif kind == "reasoning":
            self.pending.extend(_reasoning_details(item))
        elif kind == "item_reference":
            raise SkinRequestError(STATELESS)
        else:
            raise SkinRequestError(f"{where}.type {kind!r} is not supported")


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise SkinRequestError("tools must be a list")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise SkinRequestError(f"tools[{i}] must be an object")
        if tool.get("type") != "function":
            continue  # hosted tools (web_search, file_search...) run on OpenAI's servers; there is no equivalent here
        if not isinstance(tool.get("name"), str):
            raise SkinRequestError(f"tools[{i}] (function) needs a name")
        function: dict[str, Any] = {"name": tool["name"]}
        function["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise SkinRequestError('tool_choice must be "auto", "none", "required" or {"type": "function", "name": ...}')


def _text_format(text: Any, chat: dict[str, Any]) -> None:
    if not isinstance(text, dict):
        raise SkinRequestError("text must be an object")
    fmt = text.get("format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_schema":
            schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
            chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif kind == "json_object":
            chat["response_format"] = {"type": "json_object"}
        elif kind != "text":
            raise SkinRequestError("text.format.type must be text, json_object or json_schema")
    if isinstance(text.get("verbosity"), str):
        chat["verbosity"] = text["verbosity"]


def _reasoning(reasoning: Any) -> dict[str, Any]:
    if not isinstance(reasoning, dict):
        raise SkinRequestError("reasoning must be an object")
    effort = reasoning.get("effort")
    if effort is not None:
        return {"effort": effort}
    return {"enabled": True} if reasoning.get("summary") else {}


def to_chat(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("store") is True or body.get("previous_response_id") or body.get("conversation"):
        raise SkinRequestError(STATELESS)
    chat: dict[str, Any] = {k: body[k] for k in PASSTHROUGH if body.get(k) is not None}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    user = body.get("user") or body.get("safety_identifier")
    if user is not None:
        chat["user"] = user
    builder = _Builder()
    instructions = body.get("instructions")
    if instructions:
        if not isinstance(instructions, str):
            raise SkinRequestError("instructions must be a string")
        builder.messages.append({"role": "system", "content": instructions})
    source = body.get("input")
    if isinstance(source, str):
        builder.messages.append({"role": "user", "content": source})
    elif isinstance(source, list):
        for i, item in enumerate(source):
            builder.item(item, f"input[{i}]")
    else:
        raise SkinRequestError("input must be a string or a list of items")
    if builder.pending:  # reasoning with no turn after it: the upstream needs no orphan reasoning
        builder.pending = []
    chat["messages"] = builder.messages
    if body.get("tools"):
        tools = _tools(body["tools"])
        if tools:
            chat["tools"] = tools
            if body.get("tool_choice") is not None:
                chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        _text_format(body["text"], chat)
    if body.get("reasoning") is not None:
        reasoning = _reasoning(body["reasoning"])
        if reasoning:
            chat["reasoning"] = reasoning
    return chat
