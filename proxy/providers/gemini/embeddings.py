"""Gemini embeddings: an OpenAI-style embeddings body as `models/{m}:embedContent` (one text) or
`:batchEmbedContents` (several), and the answer read back as OpenAI `data` items.

Gemini takes text only (token arrays are never routed here), calls `dimensions` `outputDimensionality`
and `input_type` `taskType`, and always answers floats: the gateway base64-encodes them when asked.
embedContent reports no token usage, so `prompt_tokens` is None and the gateway bills its own estimate,
marked estimated; a `usageMetadata.promptTokenCount`, when a host sends one, is used instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.providers._common import dumps, loads
from proxy.providers.base import HttpCall, ProviderError, Target
from proxy.providers.gemini.wire import error_from_body
from proxy.providers.openai import ParsedEmbeddings

# OpenRouter's `input_type` values (and the Cohere/Voyage spellings clients send) to Gemini task types.
_TASK_TYPES = {
    "query": "RETRIEVAL_QUERY",
    "search_query": "RETRIEVAL_QUERY",
    "retrieval_query": "RETRIEVAL_QUERY",
    "document": "RETRIEVAL_DOCUMENT",
    "passage": "RETRIEVAL_DOCUMENT",
    "search_document": "RETRIEVAL_DOCUMENT",
    "retrieval_document": "RETRIEVAL_DOCUMENT",
    "semantic_similarity": "SEMANTIC_SIMILARITY",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "question_answering": "QUESTION_ANSWERING",
    "fact_verification": "FACT_VERIFICATION",
    "code_retrieval_query": "CODE_RETRIEVAL_QUERY",
}


def _base(target: Target) -> str:
    base = target.base_url.rstrip("/")
    return base if base.endswith(("/v1beta", "/v1")) else base + "/v1beta"


def _one(text: str, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
    task = _TASK_TYPES.get(str(body.get("input_type") or "").lower())
    if task:
        out["taskType"] = task
    if body.get("dimensions") is not None:
        out["outputDimensionality"] = body["dimensions"]
    return out


def build_embeddings_request(body: Mapping[str, Any], target: Target) -> HttpCall:
    """A string goes to embedContent; a list of strings to batchEmbedContents, one request per text
    (the batch answer keeps their order)."""
    raw = body["input"]
    if not (isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw))):
        raise ProviderError(400, "Gemini embeddings take text input only, not token arrays", retryable=False)
    model = target.upstream_model.removeprefix("models/")
    headers = {"x-goog-api-key": target.api_key, "Content-Type": "application/json", **target.extra_headers}
    url = f"{_base(target)}/models/{model}"
    if isinstance(raw, str):
        return HttpCall(url=f"{url}:embedContent", headers=headers, body=dumps(_one(raw, model, body)))
    payload = {"requests": [_one(text, model, body) for text in raw]}
    return HttpCall(url=f"{url}:batchEmbedContents", headers=headers, body=dumps(payload))


def parse_embeddings_response(body: bytes, upstream_model: str = "") -> ParsedEmbeddings:
    obj = loads(body)
    if isinstance(obj, list) or (isinstance(obj, dict) and obj.get("error")):
        raise error_from_body(obj)
    if not isinstance(obj, dict):
        raise ProviderError(502, "Provider returned an invalid embeddings response", raw=obj, retryable=True)
    if isinstance(obj.get("embedding"), dict):
        vectors = [obj["embedding"]]
    elif isinstance(obj.get("embeddings"), list):
        vectors = obj["embeddings"]
    else:
        raise ProviderError(502, "Provider returned an invalid embeddings response", raw=obj, retryable=True)
    data: list[dict[str, Any]] = []
    for i, item in enumerate(vectors):
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(values, list):
            raise ProviderError(502, "Provider returned an embedding without values", raw=obj, retryable=True)
        data.append({"object": "embedding", "index": i, "embedding": values})
    tokens = (obj.get("usageMetadata") or {}).get("promptTokenCount")
    return ParsedEmbeddings(
        upstream_model=upstream_model,
        data=data,
        prompt_tokens=int(tokens) if isinstance(tokens, int | float) and not isinstance(tokens, bool) else None,
    )
