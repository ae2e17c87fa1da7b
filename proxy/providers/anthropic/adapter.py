"""The anthropic adapter: the wire format (wire.py) and the stream parser (stream.py) behind the
one adapter interface the gateway calls."""

from __future__ import annotations

from collections.abc import Mapping

from proxy.providers._common import dumps, header, loads, parse_retry_after
from proxy.providers.anthropic.stream import AnthropicStreamParser
from proxy.providers.anthropic.wire import (
    API_VERSION,
    FINISH,
    build_body,
    error_from_body,
    message_from_blocks,
    usage_from,
)
from proxy.providers.base import HttpCall, ParsedCompletion, ProviderError, Target
from proxy.schemas import ChatRequest


class AnthropicAdapter:
    kind = "anthropic"

    def build_request(self, request: ChatRequest, target: Target, *, stream: bool) -> HttpCall:
        body = build_body(request, target.upstream_model, stream=stream)
        headers = {
            "x-api-key": target.api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
            **target.extra_headers,
        }
        return HttpCall(url=target.base_url.rstrip("/") + "/v1/messages", headers=headers, body=dumps(body))

    def parse_response(self, body: bytes) -> ParsedCompletion:
        obj = loads(body)
        if isinstance(obj, dict) and obj.get("type") == "error":
            raise error_from_body(obj)
        if not isinstance(obj, dict) or not isinstance(obj.get("content"), list):
            raise ProviderError(502, "Provider returned an invalid response", raw=obj, retryable=True)
        native = obj.get("stop_reason")
        choice = {
            "index": 0,
            "message": message_from_blocks(obj["content"]),
            "finish_reason": FINISH.get(native, "stop") if native else None,
            "native_finish_reason": native,
            "logprobs": None,
        }
        usage = usage_from(obj["usage"]) if obj.get("usage") else None
        return ParsedCompletion(upstream_id=obj.get("id") or "", choices=[choice], usage=usage)

    def stream_parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return error_from_body(loads(body), status, parse_retry_after(header(headers, "retry-after")))
