"""Skins: the other client protocols (Anthropic Messages, OpenAI Responses) over the one chat core.

Each skin is pure translation, like the provider adapters: it turns its protocol's request into the
chat-completions body that `proxy.gateway.validate.parse_request` understands, and the core's chat
result (choices, stream chunk choices, the settled usage, errors) back into its protocol. Admission,
routing, failover, billing and the abnormal-stream policy stay the gateway's, so the same upstream
usage is charged the same whatever the skin.
"""

from __future__ import annotations

from proxy.skins.base import RenderContext, Skin, SkinRequestError, StreamRenderer
from proxy.skins.messages import MessagesSkin
from proxy.skins.responses import ResponsesSkin

__all__ = ["MessagesSkin", "RenderContext", "ResponsesSkin", "Skin", "SkinRequestError", "StreamRenderer"]
