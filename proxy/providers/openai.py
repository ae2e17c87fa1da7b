"""OpenAI Chat Completions, and every OpenAI-compatible host (DeepInfra, Together, Groq, vLLM, ...).

Our canonical format already is this format, so the adapter mostly forwards: it renames the model,
maps `reasoning` to `reasoning_effort`, asks for streamed usage, and strips what the strict hosts
(OpenAI itself, Azure) reject. Compatible hosts that return their chain of thought as
`reasoning_content` (DeepSeek, vLLM, SGLang) or `reasoning` get it mapped to `reasoning`, with the
`reasoning_details` block clients read (Cline, Roo Code, the AI SDK) built from it when the host sent none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Required, TypedDict

from billing.pricing import Usage
from proxy.providers._common import (
    classify,
    dumps,
    effort_from_budget,
    header,
    loads,
    normalize_finish,
    parse_retry_after,
    reasoning_disabled,
    reasoning_of,
    text_details,
)
from proxy.providers.base import HttpCall, ParsedCompletion, ProviderError, Target
from proxy.schemas import ChatRequest, ChunkChoice, Message
from proxy.sse import SSEEvent

# Hosts that validate strictly: unknown parameters and unknown content-part keys are a 400 there.
STRICT_HOSTS = frozenset({"openai", "azure"})
_NON_OPENAI_PARAMS = frozenset({"top_k", "repetition_penalty", "min_p", "top_a", "cache_control"})
_FORWARDED = (
    "temperature",
    "top_p",
    "top_k",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "min_p",
    "top_a",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "stop",
    "response_format",
    "tools",
    "prediction",
    "verbosity",
    "user",
    "prompt_cache_key",
    "service_tier",
    "web_search_options",
    "modalities",
    "cache_control",
)
_OPENAI_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})


class OpenAIStreamOptions(TypedDict):
    include_usage: bool


class OpenAIRequest(TypedDict, total=False):
    """The subset of the upstream body this adapter writes itself; forwarded fields keep our shapes."""

    model: Required[str]
    messages: Required[list[dict[str, Any]]]
    max_tokens: int
    max_completion_tokens: int
    reasoning_effort: str
    parallel_tool_calls: bool
    stream: bool
    stream_options: OpenAIStreamOptions


def _message_out(message: Message, strict: bool) -> dict[str, Any]:
    # Reasoning passed back by clients is OpenRouter's extension; plain OpenAI-compatible hosts
    # reject or ignore it, and it carries other providers' signatures that mean nothing here.
    out: dict[str, Any] = {k: v for k, v in message.items() if k not in ("reasoning", "reasoning_details")}
    content = out.get("content")
    if strict and isinstance(content, list):
        out["content"] = _strip_cache_control(content)
    return out


def _reasoning_effort(request: ChatRequest) -> str | None:
    if reasoning_disabled(request):
        normalized = request.get("reasoning")
        return "none" if normalized and normalized.get("effort") == "none" else None
    reasoning = reasoning_of(request)
    if reasoning is None:
        return None
    effort = reasoning.get("effort")
    if effort:
        return "xhigh" if effort == "max" else effort if effort in _OPENAI_EFFORTS else "medium"
    budget = reasoning.get("max_tokens")
    if budget:
        return effort_from_budget(budget, request.get("max_tokens"))
    return "medium"


def _usage(raw: Mapping[str, Any] | None) -> Usage | None:
    if not raw:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") or raw.get("prompt_cache_hit_tokens") or 0  # DeepSeek
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached),
        cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def _error_message(raw: object) -> str | None:
    if isinstance(raw, dict):
        err = raw.get("error", raw)
        if isinstance(err, str):
            return err
        if isinstance(err, dict):
            for key in ("message", "detail"):
                if isinstance(err.get(key), str) and err[key]:
                    return str(err[key])
    return None


def _stream_error(raw: dict[str, Any]) -> ProviderError:
    err = raw.get("error")
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return classify(status, _error_message(raw), raw)


class OpenAIStreamParser:
    def __init__(self) -> None:
        self.upstream_id = ""
        self.usage: Usage | None = None
        self.finished = False
        self.system_fingerprint: str | None = None
        self.service_tier: str | None = None
        self._started: set[int] = set()
        self._tool_counts: dict[int, int] = {}  # choice index -> tool calls seen (hosts omitting `index`)

    def feed(self, event: SSEEvent) -> list[ChunkChoice]:
        if event.data == "[DONE]":
            self.finished = True
            return []
        obj = loads(event.data)
        if not isinstance(obj, dict):
            return []
        if obj.get("error"):
            raise _stream_error(obj)
        self.upstream_id = obj.get("id") or self.upstream_id
        self.system_fingerprint = obj.get("system_fingerprint") or self.system_fingerprint
        self.service_tier = obj.get("service_tier") or self.service_tier
        if obj.get("usage"):
            self.usage = _usage(obj["usage"])
        out: list[ChunkChoice] = []
        for choice in obj.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta")
            # Parsed just now and ours alone, so edited in place; most deltas are one text piece.
            delta = delta if type(delta) is dict else dict(delta or {})
            if index not in self._started:
                if delta:
                    self._started.add(index)
                    delta.setdefault("role", "assistant")
                self._normalize(index, delta)
            elif len(delta) != 1 or "content" not in delta:
                self._normalize(index, delta)
            native = choice.get("finish_reason")
            out.append(
                {
                    "index": index,
                    "delta": delta,  # type: ignore[typeddict-item]
                    "finish_reason": None
                    if native is None
                    else normalize_finish(native, has_tool_calls=index in self._tool_counts),  # type: ignore[typeddict-item]
                    "native_finish_reason": native,
                    "logprobs": choice.get("logprobs"),
                }
            )
        return out

    def _normalize(self, index: int, delta: dict[str, Any]) -> None:
        """Reasoning under OpenRouter's names, and tool-call fragments that all carry an index."""
        alias = delta.pop("reasoning_content", None)
        if alias and not delta.get("reasoning"):
            delta["reasoning"] = alias
        if delta.get("reasoning") and not delta.get("reasoning_details"):
            delta["reasoning_details"] = text_details(delta["reasoning"])
        if delta.get("tool_calls"):
            delta["tool_calls"] = self._indexed(index, delta["tool_calls"])

    def _indexed(self, choice: int, fragments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Some compatible hosts omit `index` on tool-call fragments; a fragment with an id opens a call."""
        seen = self._tool_counts.get(choice, 0)
        out = []
        for fragment in fragments:
            if "index" in fragment:
                seen = max(seen, fragment["index"] + 1)
            else:
                if fragment.get("id") or seen == 0:
                    seen += 1
                fragment = {"index": seen - 1, **fragment}
            out.append(fragment)
        self._tool_counts[choice] = seen
        return out


def _strip_cache_control(items: list[Any]) -> list[Any]:
    return [{k: v for k, v in item.items() if k != "cache_control"} for item in items]


class OpenAIAdapter:
    """OpenAI itself and any host speaking its Chat Completions dialect, chosen by `Target.base_url`."""

    kind = "openai"

    def build_request(self, request: ChatRequest, target: Target, *, stream: bool) -> HttpCall:
        strict = target.provider_slug.split("/", 1)[0] in STRICT_HOSTS
        body: OpenAIRequest = {
            "model": target.upstream_model,
            "messages": [_message_out(m, strict) for m in request["messages"]],
        }
        loose: dict[str, Any] = body  # type: ignore[assignment]
        for key in _FORWARDED:
            if key in request and not (strict and key in _NON_OPENAI_PARAMS):
                loose[key] = request[key]  # type: ignore[literal-required]
        if strict and request.get("tools"):
            loose["tools"] = _strip_cache_control(request["tools"])
        if "max_tokens" in request:
            # OpenAI's reasoning models refuse `max_tokens`; every other host still expects it.
            body["max_completion_tokens" if strict else "max_tokens"] = request["max_tokens"]
        if request.get("tools"):
            # OpenAI refuses both knobs without tools (a client may leave them set on a tool-less turn).
            if "tool_choice" in request:
                loose["tool_choice"] = request["tool_choice"]
            if "parallel_tool_calls" in request:
                body["parallel_tool_calls"] = request["parallel_tool_calls"]
        effort = _reasoning_effort(request)
        if effort:
            body["reasoning_effort"] = effort
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        headers = {
            "Authorization": f"Bearer {target.api_key}",
            "Content-Type": "application/json",
            **target.extra_headers,
        }
        return HttpCall(url=target.base_url.rstrip("/") + "/chat/completions", headers=headers, body=dumps(body))

    def parse_response(self, body: bytes) -> ParsedCompletion:
        obj = loads(body)
        if isinstance(obj, dict) and obj.get("error"):
            raise _stream_error(obj)  # some hosts answer 200 with an error body
        if not isinstance(obj, dict) or not isinstance(obj.get("choices"), list):
            raise ProviderError(502, "Provider returned an invalid response", raw=obj, retryable=True)
        choices = [self._choice(c) for c in obj["choices"]]
        return ParsedCompletion(
            upstream_id=obj.get("id") or "",
            choices=choices,
            usage=_usage(obj.get("usage")),
            system_fingerprint=obj.get("system_fingerprint"),
            service_tier=obj.get("service_tier"),
        )

    @staticmethod
    def _choice(choice: Mapping[str, Any]) -> dict[str, Any]:
        msg = choice.get("message") or {}
        message: dict[str, Any] = {
            "role": "assistant",
            "content": msg.get("content"),
            "refusal": msg.get("refusal"),
            "reasoning": msg.get("reasoning") or msg.get("reasoning_content"),
        }
        if msg.get("reasoning_details"):
            message["reasoning_details"] = msg["reasoning_details"]
        elif message["reasoning"]:
            message["reasoning_details"] = text_details(message["reasoning"])
        tool_calls = msg.get("tool_calls")
        if tool_calls:
            message["tool_calls"] = [{"index": i, **call} for i, call in enumerate(tool_calls)]
        for extra in ("images", "audio", "annotations"):
            if msg.get(extra):
                message[extra] = msg[extra]
        native = choice.get("finish_reason")
        return {
            "index": choice.get("index", 0),
            "message": message,
            "finish_reason": normalize_finish(native, has_tool_calls=bool(tool_calls)),
            "native_finish_reason": native,
            "logprobs": choice.get("logprobs"),
        }

    def stream_parser(self) -> OpenAIStreamParser:
        return OpenAIStreamParser()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        raw = loads(body)
        return classify(status, _error_message(raw), raw, retry_after=parse_retry_after(header(headers, "retry-after")))


# -- embeddings ----------------------------------------------------------------------------------

_EMBEDDING_FORWARDED = ("input", "dimensions", "encoding_format", "user", "input_type")


@dataclass(frozen=True, slots=True)
class ParsedEmbeddings:
    upstream_model: str
    data: list[dict[str, Any]]  # [{"object": "embedding", "index", "embedding": [floats] | "<base64>"}]
    prompt_tokens: int | None  # None: the host did not say


def build_embeddings_request(body: Mapping[str, Any], target: Target) -> HttpCall:
    """POST {base}/embeddings, the one embeddings dialect every OpenAI-compatible host (vLLM, Ollama,
    Together...) speaks. `input_type` is only sent to hosts that are not OpenAI's strict ones."""
    strict = target.provider_slug.split("/", 1)[0] in STRICT_HOSTS
    out: dict[str, Any] = {"model": target.upstream_model}
    for key in _EMBEDDING_FORWARDED:
        if key in body and body[key] is not None and not (strict and key == "input_type"):
            out[key] = body[key]
    headers = {"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json", **target.extra_headers}
    return HttpCall(url=target.base_url.rstrip("/") + "/embeddings", headers=headers, body=dumps(out))


def parse_embeddings_response(body: bytes) -> ParsedEmbeddings:
    obj = loads(body)
    if isinstance(obj, dict) and obj.get("error"):
        raise _stream_error(obj)
    if not isinstance(obj, dict) or not isinstance(obj.get("data"), list):
        raise ProviderError(502, "Provider returned an invalid embeddings response", raw=obj, retryable=True)
    data = [
        {"object": "embedding", "index": item.get("index", i), "embedding": item.get("embedding")}
        for i, item in enumerate(obj["data"])
        if isinstance(item, dict)
    ]
    usage = obj.get("usage") or {}
    tokens = usage.get("prompt_tokens", usage.get("total_tokens"))
    return ParsedEmbeddings(
        upstream_model=str(obj.get("model") or ""),
        data=data,
        prompt_tokens=int(tokens) if isinstance(tokens, int | float) else None,
    )
