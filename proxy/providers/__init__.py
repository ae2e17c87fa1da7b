"""Provider adapters: pure translation between our OpenAI-shaped API and each upstream dialect.

`get_adapter(kind)` returns the module-level singleton for a `Provider.adapter` value; adapters keep
no state between calls (stream parsers do, one per stream).
"""

from __future__ import annotations

from proxy.providers.anthropic import AnthropicAdapter
from proxy.providers.base import (
    Adapter,
    HttpCall,
    ParsedCompletion,
    ProviderError,
    StreamParser,
    Target,
    hide_reasoning,
)
from proxy.providers.gemini import GeminiAdapter
from proxy.providers.openai import OpenAIAdapter

ADAPTERS: dict[str, Adapter] = {
    "openai": OpenAIAdapter(),
    "anthropic": AnthropicAdapter(),
    "gemini": GeminiAdapter(),
}


def get_adapter(kind: str) -> Adapter:
    try:
        return ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"unknown adapter kind {kind!r}") from None


__all__ = [
    "ADAPTERS",
    "Adapter",
    "HttpCall",
    "ParsedCompletion",
    "ProviderError",
    "StreamParser",
    "Target",
    "get_adapter",
    "hide_reasoning",
]
