"""Google Gemini `generateContent` / `streamGenerateContent?alt=sse`, to and from our OpenAI shape.

The differences that matter: roles are user/model and the system prompt is `systemInstruction`;
content is `parts`; tool calls are `functionCall` parts answered by `functionResponse` parts that
refer to the function by *name* (ids are optional and usually absent, so we synthesize stable
ones); tool schemas accept only an OpenAPI subset; thinking is a token budget, and thought
signatures must come back on the part they arrived on (we carry them in `reasoning_details`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, TypedDict

from billing.pricing import Usage
from proxy.providers._common import (
    arguments_object,
    budget_from_effort,
    classify,
    dumps,
    loads,
    merge_details,
    mime_from_url,
    named_content,
    parse_data_url,
    parse_retry_after,
    reasoning_disabled,
    reasoning_of,
    stop_list,
    text_of,
    tool_names_by_id,
)
from proxy.providers.base import ProviderError
from proxy.schemas import ChatRequest, Message

REASONING_FORMAT = "google-gemini-v1"
THINKING_BASE_TOKENS = 16384  # what the effort share applies to when the client set no max_tokens
MIN_THINKING_BUDGET = 128  # the floor of the 2.5 Pro models
MAX_THINKING_BUDGET = 24576  # the ceiling of the Flash models (Pro allows more, Flash refuses it)
# Google's documented stand-in for history Gemini did not produce (another provider's tool calls):
# Gemini 3 refuses a step whose first functionCall carries no signature at all.
FOREIGN_SIGNATURE = "skip_thought_signature_validator"

FINISH: Mapping[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
}

Part = dict[str, Any]


class GeminiContent(TypedDict):
    role: str  # "user" | "model"
    parts: list[Part]


class GeminiRequest(TypedDict, total=False):
    contents: list[GeminiContent]
    systemInstruction: dict[str, list[Part]]
    tools: list[dict[str, Any]]
    toolConfig: dict[str, Any]
    generationConfig: dict[str, Any]


# -- schemas: Gemini accepts an OpenAPI subset and rejects unknown keywords ----------------------

_SCHEMA_KEYS = frozenset(
    {"type", "format", "description", "nullable", "enum", "items", "properties", "required", "anyOf"}
    | {"minItems", "maxItems", "minimum", "maximum", "propertyOrdering"}
)
_FORMATS = frozenset({"enum", "date-time", "int32", "int64", "float", "double"})


def clean_schema(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = clean_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [clean_schema(sub) for sub in value]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if types else "string"
            if "null" in value:
                out["nullable"] = True
        elif key == "enum" and isinstance(value, list):
            out[key] = [str(v) for v in value if v is not None]
        elif key == "format" and value not in _FORMATS:
            continue
        else:
            out[key] = value
    # Gemini only has string enums: keep one on a string (or untyped) field, drop it elsewhere.
    if "enum" in out and out.setdefault("type", "string") != "string":
        del out["enum"]
    return out


# -- request ----------------------------------------------------------------------------------


def _media_part(url: str, default_mime: str) -> Part:
    data = parse_data_url(url)
    if data:
        return {"inlineData": {"mimeType": data[0], "data": data[1]}}
    return {"fileData": {"mimeType": mime_from_url(url, default_mime), "fileUri": url}}


def _user_parts(content: Any) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[Part] = []
    for part in content:
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_media_part(part["image_url"]["url"], "image/jpeg"))
        elif kind == "file" and part["file"].get("file_data"):
            parts.append(_media_part(part["file"]["file_data"], "application/pdf"))
        elif kind == "input_audio":
            audio = part["input_audio"]
            parts.append({"inlineData": {"mimeType": f"audio/{audio['format']}", "data": audio["data"]}})
    return parts


def _model_parts(message: Message) -> list[Part]:
    by_call: dict[str, str] = {}
    loose: list[str] = []
    for detail in merge_details(message.get("reasoning_details") or []):
        if detail.get("format") != REASONING_FORMAT:
            continue
        signature = detail.get("data") if detail["type"] == "reasoning.encrypted" else detail.get("signature")
        if not signature:
            continue
        if detail.get("id"):
            by_call[detail["id"]] = signature  # type: ignore[index]
        else:
            loose.append(signature)
    parts: list[Part] = []
    text = text_of(named_content(message))
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or ():
        part: Part = {
            "functionCall": {"name": call["function"]["name"], "args": arguments_object(call["function"]["arguments"])}
        }
        if call["id"] in by_call:
            part["thoughtSignature"] = by_call[call["id"]]
        parts.append(part)
    if loose and parts and "thoughtSignature" not in parts[0]:
        parts[0]["thoughtSignature"] = loose[0]
    calls = [p for p in parts if "functionCall" in p]
    if calls and not any("thoughtSignature" in p for p in parts):
        calls[0]["thoughtSignature"] = FOREIGN_SIGNATURE
    return parts


def _function_response(message: Message, names: Mapping[str, str]) -> Part:
    content = message.get("content")
    text = content if isinstance(content, str) else text_of(content)
    value = loads(text) if text else ""
    response = value if isinstance(value, dict) else {"result": value}
    name = names.get(message.get("tool_call_id") or "") or message.get("name") or "function"
    return {"functionResponse": {"name": name, "response": response}}


def convert_messages(messages: list[Message]) -> tuple[list[Part], list[GeminiContent]]:
    names = tool_names_by_id(messages)
    system: list[Part] = []
    contents: list[GeminiContent] = []

    def push(role: str, parts: list[Part]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        role = message["role"]
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append({"text": text})
        elif role == "user":
            push("user", _user_parts(named_content(message)))
        elif role == "assistant":
            push("model", _model_parts(message))
        elif role == "tool":
            push("user", [_function_response(message, names)])
    return system, contents


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.get("tool_choice")
    if choice is None:
        return None
    if choice == "none":
        config: dict[str, Any] = {"mode": "NONE"}
    elif choice == "required":
        config = {"mode": "ANY"}
    elif isinstance(choice, dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    else:
        config = {"mode": "AUTO"}
    return {"functionCallingConfig": config}


def _declarations(request: ChatRequest) -> list[dict[str, Any]]:
    declarations = []
    for tool in request.get("tools") or ():
        if tool.get("type") != "function" or "function" not in tool:
            continue
        fn = tool["function"]
        decl: dict[str, Any] = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        params = clean_schema(fn.get("parameters") or {})
        if params.get("properties"):  # Gemini refuses an OBJECT schema without properties
            decl["parameters"] = params
        declarations.append(decl)
    return declarations


def thinking_config(request: ChatRequest) -> dict[str, Any] | None:
    reasoning = reasoning_of(request)
    if reasoning is None:
        return {"thinkingBudget": 0} if reasoning_disabled(request) else None
    budget = reasoning.get("max_tokens") or budget_from_effort(
        reasoning.get("effort"), request.get("max_tokens") or THINKING_BASE_TOKENS
    )
    budget = min(max(budget, MIN_THINKING_BUDGET), MAX_THINKING_BUDGET)
    return {"thinkingBudget": budget, "includeThoughts": not reasoning.get("exclude", False)}


_GENERATION_KEYS = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("max_tokens", "maxOutputTokens"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
    ("seed", "seed"),
    ("logprobs", "responseLogprobs"),
    ("top_logprobs", "logprobs"),
)


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {ours: request[theirs] for theirs, ours in _GENERATION_KEYS if theirs in request}  # type: ignore[literal-required]
    stops = stop_list(request.get("stop"))
    if stops:
        config["stopSequences"] = stops
    fmt: Mapping[str, Any] = request.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if fmt.get("type") == "json_schema" and schema:
            config["responseSchema"] = clean_schema(schema)
    if request.get("modalities"):
        config["responseModalities"] = [m.upper() for m in request["modalities"]]
    thinking = thinking_config(request)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def build_body(request: ChatRequest) -> GeminiRequest:
    system, contents = convert_messages(request["messages"])
    body: GeminiRequest = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    declarations = _declarations(request)
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        tool_config = _tool_config(request)
        if tool_config:
            body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


# -- response ---------------------------------------------------------------------------------


def synthesize_call_id(response_id: str, name: str, args: Any, position: int) -> str:
    """Gemini rarely gives call ids; derive one that is the same for the streamed and whole answer."""
    seed = f"{response_id}\x00{position}\x00{name}\x00".encode() + dumps(args)
    return "call_" + hashlib.sha256(seed).hexdigest()[:24]


def usage_from(raw: Mapping[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    thoughts = int(raw.get("thoughtsTokenCount") or 0)
    return Usage(
        # Tool-use prompt tokens are input the model read, billed as prompt.
        prompt_tokens=int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0),
        completion_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(raw.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


class PartsTranslation:
    """The OpenAI-side pieces of a list of Gemini parts (a whole answer or one streamed chunk).

    Consecutive thought parts are one reasoning block: they share a `reasoning_details` index, also
    across streamed chunks (`open_thought` carries the block still being written from one chunk to
    the next), so clients merging fragments by index rebuild one block, as for Anthropic.
    """

    def __init__(
        self,
        parts: list[Mapping[str, Any]],
        response_id: str,
        first_tool: int = 0,
        next_detail: int = 0,
        open_thought: int | None = None,
    ) -> None:
        self.text: list[str] = []
        self.thoughts: list[str] = []
        self.details: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []
        self.next_detail = next_detail
        self.open_thought = open_thought
        for part in parts:
            signature = part.get("thoughtSignature")
            if part.get("thought") and "text" in part:
                self._thought(part["text"], signature)
                continue
            self.open_thought = None
            detail_index = self.next_detail
            if "functionCall" in part:
                fc = part["functionCall"]
                args = fc.get("args") or {}
                position = first_tool + len(self.calls)
                call_id = fc.get("id") or synthesize_call_id(response_id, fc["name"], args, position)
                self.calls.append(
                    {
                        "index": position,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": fc["name"], "arguments": dumps(args).decode()},
                    }
                )
                if signature:
                    self._add(self._encrypted(signature, detail_index, call_id))
            elif "text" in part:
                self.text.append(part["text"])
                if signature:
                    self._add(self._encrypted(signature, detail_index, None))
            elif "inlineData" in part:
                data = part["inlineData"]
                url = f"data:{data.get('mimeType', 'image/png')};base64,{data.get('data', '')}"
                self.images.append({"type": "image_url", "image_url": {"url": url}})

    def _add(self, detail: dict[str, Any]) -> None:
        self.details.append(detail)
        self.next_detail += 1

    def _thought(self, text: str, signature: str | None) -> None:
        self.thoughts.append(text)
        if self.open_thought is not None and self.details and self.details[-1]["index"] == self.open_thought:
            current = self.details[-1]  # same block, same answer: grow it rather than repeat it
            current["text"] += text
        elif self.open_thought is not None:
            current = {"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": self.open_thought}
            self.details.append(current)
        else:
            current = {"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": self.next_detail}
            self.open_thought = self.next_detail
            self._add(current)
        if signature:
            current["signature"] = signature

    @staticmethod
    def _encrypted(signature: str, index: int, call_id: str | None) -> dict[str, Any]:
        return {
            "type": "reasoning.encrypted",
            "data": signature,
            "id": call_id,
            "format": REASONING_FORMAT,
            "index": index,
        }


def finish_of(native: str | None, has_calls: bool) -> str | None:
    if native is None:
        return None
    if has_calls and native == "STOP":
        return "tool_calls"
    return FINISH.get(native, "stop")


def error_from_body(raw: object, status: int | None = None, retry_after: float | None = None) -> ProviderError:
    if isinstance(raw, list) and raw:
        raw = raw[0]  # the non-SSE stream endpoint wraps everything in a JSON array
    err = raw.get("error") if isinstance(raw, dict) else None
    message = err.get("message") if isinstance(err, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    upstream = status if status is not None else (code if isinstance(code, int) else 500)
    if retry_after is None and isinstance(err, dict):
        for detail in err.get("details") or ():
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            if isinstance(delay, str) and delay.endswith("s"):
                retry_after = parse_retry_after(delay[:-1])
    return classify(upstream, message, raw, retry_after=retry_after)
