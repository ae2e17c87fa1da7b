"""The canonical, OpenAI-shaped wire types of `/api/v1/chat/completions` (contract sections 2 and 3).

They are TypedDicts on purpose: the hot path handles plain dicts straight out of orjson, and these
only tell the type checker (and the reader) what keys to expect. Nothing here validates at runtime.
Provider-native wire types live next to their adapter in `proxy/providers/<kind>.py`.
"""

from __future__ import annotations

from typing import Any, Literal, Required, TypedDict

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
Role = Literal["system", "developer", "user", "assistant", "tool"]


class CacheControl(TypedDict, total=False):
    type: Required[str]  # "ephemeral"
    ttl: str  # "5m" | "1h"


class TextPart(TypedDict, total=False):
    type: Required[Literal["text"]]
    text: Required[str]
    cache_control: CacheControl


class ImageUrl(TypedDict, total=False):
    url: Required[str]  # https://... or data:image/png;base64,...
    detail: str


class ImageUrlPart(TypedDict, total=False):
    type: Required[Literal["image_url"]]
    image_url: Required[ImageUrl]
    cache_control: CacheControl


class InputAudio(TypedDict):
    data: str  # base64
    format: str


class InputAudioPart(TypedDict):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileData(TypedDict, total=False):
    filename: str
    file_data: str  # https://... or data:application/pdf;base64,...
    file_id: str


class FilePart(TypedDict, total=False):
    type: Required[Literal["file"]]
    file: Required[FileData]
    cache_control: CacheControl


ContentPart = TextPart | ImageUrlPart | InputAudioPart | FilePart


class FunctionCall(TypedDict):
    name: str
    arguments: str  # a JSON document, as a string


class ToolCall(TypedDict, total=False):
    id: Required[str]
    type: Required[Literal["function"]]
    function: Required[FunctionCall]
    index: int  # present on response messages


class ReasoningDetail(TypedDict, total=False):
    """One structured reasoning block (contract 2.8); passed back by clients unmodified."""

    type: Required[str]  # "reasoning.text" | "reasoning.summary" | "reasoning.encrypted"
    text: str
    summary: str
    data: str
    signature: str | None
    id: str | None
    format: str  # "anthropic-claude-v1" | "google-gemini-v1" | "openai-responses-v1" | "unknown" | ...
    index: int


class Message(TypedDict, total=False):
    """Any input message; which keys appear depends on `role` (contract 2.2)."""

    role: Required[Role]
    content: str | list[ContentPart] | None
    name: str
    tool_calls: list[ToolCall]  # assistant
    tool_call_id: str  # tool
    reasoning: str | None  # assistant, passed back
    reasoning_details: list[ReasoningDetail]  # assistant, passed back
    refusal: str | None


class FunctionDef(TypedDict, total=False):
    name: Required[str]
    description: str
    parameters: dict[str, Any]
    strict: bool


class Tool(TypedDict, total=False):
    type: Required[str]  # "function"
    function: FunctionDef
    cache_control: CacheControl


class NamedToolChoice(TypedDict):
    type: Literal["function"]
    function: dict[str, str]  # {"name": ...}


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(TypedDict, total=False):
    name: Required[str]
    description: str
    schema: dict[str, Any]
    strict: bool


class ResponseFormat(TypedDict, total=False):
    type: Required[str]  # "text" | "json_object" | "json_schema"
    json_schema: JsonSchemaFormat


class NormalizedReasoning(TypedDict):
    """`reasoning` after the gateway folded reasoning_effort and include_reasoning into it."""

    enabled: bool
    effort: str | None  # "max" | "xhigh" | "high" | "medium" | "low" | "minimal" | "none"
    max_tokens: int | None  # thinking budget
    exclude: bool  # think, but do not return the text


class ChatRequest(TypedDict, total=False):
    """The validated, normalized body the gateway hands to an adapter.

    OpenRouter-only fields (model, models, provider, plugins, usage, ...) are already removed and
    `max_completion_tokens` is folded into `max_tokens`.
    """

    messages: Required[list[Message]]
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    frequency_penalty: float
    presence_penalty: float
    repetition_penalty: float
    min_p: float
    top_a: float
    seed: int
    logit_bias: dict[str, float]
    logprobs: bool
    top_logprobs: int
    stop: str | list[str]
    response_format: ResponseFormat
    tools: list[Tool]
    tool_choice: ToolChoice
    parallel_tool_calls: bool
    prediction: dict[str, Any]
    verbosity: str
    user: str
    prompt_cache_key: str
    service_tier: str
    web_search_options: dict[str, Any]
    modalities: list[str]
    cache_control: CacheControl
    stream: bool
    reasoning: NormalizedReasoning


# -- responses ---------------------------------------------------------------------------------


class ChatMessageOut(TypedDict, total=False):
    role: Required[Literal["assistant"]]
    content: Required[str | None]
    refusal: str | None
    reasoning: str | None
    reasoning_details: list[ReasoningDetail]
    tool_calls: list[ToolCall]
    images: list[dict[str, Any]]


class ChoiceOut(TypedDict, total=False):
    index: Required[int]
    message: Required[ChatMessageOut]
    finish_reason: Required[FinishReason | None]
    native_finish_reason: Required[str | None]
    logprobs: Required[dict[str, Any] | None]
    error: dict[str, Any]


class ToolCallDelta(TypedDict, total=False):
    """A streamed tool-call fragment; the first one for an `index` carries id, type and name."""

    index: Required[int]
    id: str
    type: Literal["function"]
    function: dict[str, str]  # {"name"?: ..., "arguments"?: ...}


class Delta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    reasoning: str | None
    reasoning_details: list[ReasoningDetail]
    tool_calls: list[ToolCallDelta]
    refusal: str | None
    images: list[dict[str, Any]]


class ChunkChoice(TypedDict, total=False):
    index: Required[int]
    delta: Required[Delta]
    finish_reason: Required[FinishReason | None]
    native_finish_reason: Required[str | None]
    logprobs: Required[dict[str, Any] | None]
    error: dict[str, Any]


class UsageOut(TypedDict, total=False):
    prompt_tokens: Required[int]
    completion_tokens: Required[int]
    total_tokens: Required[int]
    prompt_tokens_details: dict[str, int]
    completion_tokens_details: dict[str, int]
    cost: float
    is_byok: bool
    cost_details: dict[str, float | None]


class ChatCompletion(TypedDict, total=False):
    id: Required[str]
    provider: str
    model: Required[str]
    object: Required[Literal["chat.completion"]]
    created: Required[int]
    system_fingerprint: str | None
    service_tier: str | None
    choices: Required[list[ChoiceOut]]
    usage: UsageOut


class ChatCompletionChunk(TypedDict, total=False):
    id: Required[str]
    provider: str
    model: Required[str]
    object: Required[Literal["chat.completion.chunk"]]
    created: Required[int]
    system_fingerprint: str | None
    service_tier: str | None
    choices: Required[list[ChunkChoice]]
    usage: UsageOut
    error: dict[str, Any]


class ErrorBody(TypedDict, total=False):
    code: Required[int]
    message: Required[str]
    metadata: dict[str, Any]


class ErrorEnvelope(TypedDict, total=False):
    error: Required[ErrorBody]
    user_id: str
