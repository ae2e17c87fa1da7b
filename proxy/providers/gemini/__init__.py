"""Gemini: one provider, three modules: wire format, stream parser, adapter."""

from proxy.providers.gemini.adapter import GeminiAdapter

__all__ = ["GeminiAdapter"]
