"""Anthropic: one provider, three modules: wire format, stream parser, adapter."""

from proxy.providers.anthropic.adapter import AnthropicAdapter

__all__ = ["AnthropicAdapter"]
