"""What the client receives: completion bodies, stream chunks and the usage object, OpenRouter-shaped."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import orjson

from billing.pricing import PriceCard, Usage, cost_split_nanos
from common.money import nanos_to_usd_number

_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Each random byte picks a character through one table lookup (bytes.translate, in C). 256 is not a
# multiple of 62, so the first eight characters are a little likelier: 20 of them still carry over
# 118 bits, and ids only need to be unique (every read of a generation is scoped to its organization).
_BYTE_TO_CHAR = bytes(_ALPHABET[b % 62] for b in range(256))


def new_generation_id() -> str:
    """`gen-<unix seconds>-<20 alphanumerics>`, as OpenRouter's ids look."""
    return f"gen-{int(time.time())}-{os.urandom(20).translate(_BYTE_TO_CHAR).decode()}"


def usage_json(
    usage: Usage, *, cost_nanos: int, list_cost_nanos: int, is_byok: bool, price: PriceCard
) -> dict[str, Any]:
    """Contract 2.6 `usage`. `cost_details` is the provider's side: the list-price cost split into its
    prompt and completion parts (OpenRouter's SDKs require both), plus the whole only for BYOK, where
    it is what the organization's own provider account pays."""
    prompt_cost, completion_cost = cost_split_nanos(usage, price, list_cost_nanos)
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "audio_tokens": 0,
            "video_tokens": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "image_tokens": 0, "audio_tokens": 0},
        "cost": nanos_to_usd_number(cost_nanos),
        "is_byok": is_byok,
        "cost_details": {
            "upstream_inference_cost": nanos_to_usd_number(list_cost_nanos) if is_byok else None,
            "upstream_inference_prompt_cost": nanos_to_usd_number(prompt_cost),
            "upstream_inference_completions_cost": nanos_to_usd_number(completion_cost),
        },
    }


def completion_body(
    *,
    generation_id: str,
    created: int,
    model: str,
    provider_name: str,
    choices: list[dict[str, Any]],
    usage: dict[str, Any],
    system_fingerprint: str | None,
    legacy: bool,
) -> dict[str, Any]:
    if legacy:
        choices = [
            {
                "index": c.get("index", 0),
                "text": (c.get("message") or {}).get("content") or "",
                "logprobs": c.get("logprobs"),
                "finish_reason": c.get("finish_reason"),
                "native_finish_reason": c.get("native_finish_reason"),
                "reasoning": (c.get("message") or {}).get("reasoning"),
            }
            for c in choices
        ]
    return {
        "id": generation_id,
        "provider": provider_name,
        "model": model,
        "object": "text_completion" if legacy else "chat.completion",
        "created": created,
        "system_fingerprint": system_fingerprint,
        "choices": choices,
        "usage": usage,
    }


class ChunkWriter:
    """Serializes stream chunks with a pre-encoded constant prefix: only `choices` is encoded per chunk."""

    __slots__ = ("_legacy", "_prefix")

    def __init__(self, *, generation_id: str, created: int, model: str, provider_name: str, legacy: bool) -> None:
        head = orjson.dumps(
            {
                "id": generation_id,
                "provider": provider_name,
                "model": model,
                "object": "text_completion" if legacy else "chat.completion.chunk",
                "created": created,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":'
        self._legacy = legacy

    def choices(self, choices: Sequence[Any]) -> bytes:
        if self._legacy:
            choices = [_legacy_choice(c) for c in choices]
        return self._prefix + orjson.dumps(choices) + b"}\n\n"

    def final(self, usage: dict[str, Any]) -> bytes:
        return self._prefix + b'[],"usage":' + orjson.dumps(usage) + b"}\n\n"

    def error(self, error: dict[str, Any], usage: dict[str, Any] | None) -> bytes:
        choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error", "native_finish_reason": None}
        extra = b',"error":' + orjson.dumps(error)
        if usage is not None:
            extra += b',"usage":' + orjson.dumps(usage)
        return self._prefix + orjson.dumps([_legacy_choice(choice) if self._legacy else choice]) + extra + b"}\n\n"


def _legacy_choice(c: dict[str, Any]) -> dict[str, Any]:
    delta = c.get("delta") or {}
    return {
        "index": c.get("index", 0),
        "text": delta.get("content") or "",
        "logprobs": c.get("logprobs"),
        "finish_reason": c.get("finish_reason"),
        "native_finish_reason": c.get("native_finish_reason"),
    }


DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
