"""The gemini adapter: the wire format (wire.py) and the stream parser (stream.py) behind the
one adapter interface the gateway calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.providers._common import dumps, header, loads, parse_retry_after
from proxy.providers.base import HttpCall, ParsedCompletion, ProviderError, Target
from proxy.providers.gemini.stream import GeminiStreamParser
from proxy.providers.gemini.wire import PartsTranslation, build_body, error_from_body, finish_of, usage_from
from proxy.schemas import ChatRequest


class GeminiAdapter:
    kind = "gemini"

    def build_request(self, request: ChatRequest, target: Target, *, stream: bool) -> HttpCall:
        base = target.base_url.rstrip("/")
        if not base.endswith(("/v1beta", "/v1")):
            base += "/v1beta"
        model = target.upstream_model.removeprefix("models/")
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        headers = {"x-goog-api-key": target.api_key, "Content-Type": "application/json", **target.extra_headers}
        return HttpCall(url=f"{base}/models/{model}{method}", headers=headers, body=dumps(build_body(request)))

    def parse_response(self, body: bytes) -> ParsedCompletion:
        obj = loads(body)
        if isinstance(obj, list) or (isinstance(obj, dict) and obj.get("error")):
            raise error_from_body(obj)
        if not isinstance(obj, dict):
            raise ProviderError(502, "Provider returned an invalid response", raw=obj, retryable=True)
        response_id = obj.get("responseId") or ""
        choices = [self._choice(c, response_id) for c in obj.get("candidates") or ()]
        if not choices:
            # The prompt itself was blocked: no candidates, only promptFeedback.blockReason.
            reason = (obj.get("promptFeedback") or {}).get("blockReason") or "OTHER"
            choices = [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": None, "refusal": None, "reasoning": None},
                    "finish_reason": "content_filter",
                    "native_finish_reason": reason,
                    "logprobs": None,
                }
            ]
        return ParsedCompletion(upstream_id=response_id, choices=choices, usage=usage_from(obj.get("usageMetadata")))

    @staticmethod
    def _choice(candidate: Mapping[str, Any], response_id: str) -> dict[str, Any]:
        parts = (candidate.get("content") or {}).get("parts") or []
        tr = PartsTranslation(parts, response_id)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(tr.text) if tr.text or not tr.calls else None,
            "refusal": None,
            "reasoning": "".join(tr.thoughts) if tr.thoughts else None,
        }
        if tr.details:
            message["reasoning_details"] = tr.details
        if tr.calls:
            message["tool_calls"] = tr.calls
        if tr.images:
            message["images"] = tr.images
        native = candidate.get("finishReason")
        return {
            "index": candidate.get("index", 0),
            "message": message,
            "finish_reason": finish_of(native, bool(tr.calls)),
            "native_finish_reason": native,
            "logprobs": None,
        }

    def stream_parser(self) -> GeminiStreamParser:
        return GeminiStreamParser()

    def map_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        return error_from_body(loads(body), status, parse_retry_after(header(headers, "retry-after")))
