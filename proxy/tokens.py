"""Prompt-size estimates for routing, before any provider has counted anything.

Routing needs a number in microseconds, not an exact count: it filters endpoints by context length
and sizes middle-out. We never download a tokenizer. The rule, documented in docs/routing.md:

* text: one token per 4 UTF-8 bytes, rounded up (English BPE runs ~4 characters a token; CJK text
  is ~3 bytes a character and ~1 token a character, which bytes/4 under-counts less than chars/4);
* each message costs 4 tokens of framing (role, separators), as OpenAI's chat format does;
* an image costs 765 tokens (a 1024x1024 image at high detail in OpenAI's tiling); a file, audio
  or video part costs 1,000 tokens, since its real size depends on decoding we do not do here.

Billing never uses these numbers: providers report the real counts. The credit hold uses
`prompt_tokens_bound` instead, an upper bound for any tokenizer (docs/billing-policy.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MESSAGE_OVERHEAD_TOKENS = 4
IMAGE_TOKENS = 765
MEDIA_TOKENS = 1_000
_MEDIA_PART_TYPES = frozenset({"file", "input_audio", "video_url", "input_video"})


def estimate_text_tokens(text: str) -> int:
    if not text:
        return 0
    return -(-len(text.encode("utf-8", "surrogatepass")) // 4)


def _part_tokens(part: object) -> int:
    if isinstance(part, str):
        return estimate_text_tokens(part)
    if not isinstance(part, Mapping):
        return 0
    kind = part.get("type")
    if kind == "image_url":
        return IMAGE_TOKENS
    if kind in _MEDIA_PART_TYPES:
        return MEDIA_TOKENS
    text = part.get("text")
    return estimate_text_tokens(text) if isinstance(text, str) else 0


def content_tokens(content: object) -> int:
    """Tokens of a message `content`: a string, a list of parts, or null."""
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if isinstance(content, list):
        return sum(_part_tokens(part) for part in content)
    return 0


def estimate_message_tokens(message: Mapping[str, Any]) -> int:
    tokens = MESSAGE_OVERHEAD_TOKENS + content_tokens(message.get("content"))
    for key in ("name", "reasoning", "reasoning_content"):
        value = message.get(key)
        if isinstance(value, str):
            tokens += estimate_text_tokens(value)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            function = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(function, Mapping):
                tokens += MESSAGE_OVERHEAD_TOKENS
                tokens += estimate_text_tokens(str(function.get("name") or ""))
                tokens += estimate_text_tokens(str(function.get("arguments") or ""))
    return tokens


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """The estimated prompt size of a chat request's `messages` (tools are added by the caller)."""
    return sum(estimate_message_tokens(m) for m in messages if isinstance(m, Mapping))


def count_images(messages: Iterable[Mapping[str, Any]]) -> int:
    """How many image parts a request carries (for image prices and image-input filtering)."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):
            total += sum(1 for p in content if isinstance(p, Mapping) and p.get("type") == "image_url")
    return total


# --- The hold's upper bound ---------------------------------------------------------------------
# Every tokenizer in use is byte-level BPE or SentencePiece with byte fallback: a token covers at
# least one UTF-8 byte of the text, so the text's byte count bounds its tokens. What the text does
# not show (chat-template framing, the tool-definition wrapper, a word-initial marker token) gets a
# fixed allowance per message and per tool; an image is bounded by the largest per-image count a
# provider charges. The bound is capped at the endpoint's context length by the caller.
MESSAGE_BOUND_TOKENS = 16
TOOL_BOUND_TOKENS = 32
# The largest per-image count of a served model family at its largest accepted size (Qwen-VL's
# dynamic resolution tops out at 16,384; OpenAI, Anthropic and Gemini stay under 2,500).
IMAGE_BOUND_TOKENS = 16_384
REQUEST_BOUND_TOKENS = 64  # the template's own start/end and the generation prompt


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _value_bound(value: object) -> int:
    """Bytes of every string (and key) in a JSON value; media parts by their own rule."""
    if isinstance(value, str):
        return _bytes(value)
    if isinstance(value, Mapping):
        kind = value.get("type")
        if kind == "image_url" or kind == "image":
            return IMAGE_BOUND_TOKENS
        total = sum(_bytes(str(k)) + _value_bound(v) for k, v in value.items())
        if kind in _MEDIA_PART_TYPES:
            # Inline media is bounded by its (base64) bytes like text; a URL by the media allowance.
            return max(total, MEDIA_TOKENS)
        return total
    if isinstance(value, list | tuple):
        return sum(_value_bound(v) for v in value)
    if value is None:
        return 0
    return len(str(value))


def prompt_tokens_bound(body: Mapping[str, Any]) -> int:
    """At least as many prompt tokens as any provider can count for this request (see above)."""
    messages = body.get("messages")
    total = REQUEST_BOUND_TOKENS
    if isinstance(messages, list):
        total += sum(MESSAGE_BOUND_TOKENS + _value_bound(m) for m in messages)
    tools = body.get("tools")
    if isinstance(tools, list):
        total += sum(TOOL_BOUND_TOKENS + _value_bound(t) for t in tools)
    # A JSON schema for structured output is sent to the model as prompt text by several providers.
    total += _value_bound(body.get("response_format"))
    return total
