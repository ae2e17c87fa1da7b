"""The OpenAI embeddings dialect: what is forwarded to a host, and what is read back."""

from __future__ import annotations

import json

import pytest

from proxy.providers.base import ProviderError, Target
from proxy.providers.openai import build_embeddings_request, parse_embeddings_response

BODY = {
    "model": "openai/text-embedding-3-small",
    "input": ["a", "b"],
    "dimensions": 256,
    "encoding_format": "base64",
    "input_type": "query",
    "user": "u-1",
    "provider": {"order": ["openai"]},
}


def test_it_forwards_the_embedding_knobs_under_the_upstream_model() -> None:
    target = Target(base_url="http://127.0.0.1:9/v1/", api_key="k", upstream_model="bge-m3", provider_slug="vllm")
    call = build_embeddings_request(BODY, target)
    assert call.url == "http://127.0.0.1:9/v1/embeddings"
    assert call.headers["Authorization"] == "Bearer k"
    assert json.loads(call.body) == {
        "model": "bge-m3",
        "input": ["a", "b"],
        "dimensions": 256,
        "encoding_format": "base64",
        "input_type": "query",
        "user": "u-1",
    }


def test_openai_itself_does_not_get_input_type() -> None:
    target = Target(base_url="https://api.openai.com/v1", api_key="k", upstream_model="m", provider_slug="openai")
    assert "input_type" not in json.loads(build_embeddings_request(BODY, target).body)


def test_it_reads_vectors_and_prompt_tokens() -> None:
    raw = {
        "object": "list",
        "model": "bge-m3",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}, {"index": 1, "embedding": "AAAAPw=="}],
        "usage": {"prompt_tokens": 7, "total_tokens": 7},
    }
    parsed = parse_embeddings_response(json.dumps(raw).encode())
    assert parsed.prompt_tokens == 7 and parsed.upstream_model == "bge-m3"
    assert [d["embedding"] for d in parsed.data] == [[0.5], "AAAAPw=="]
    no_usage = parse_embeddings_response(json.dumps({"data": []}).encode())
    assert no_usage.prompt_tokens is None


def test_an_error_body_or_garbage_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_embeddings_response(b'{"error": {"message": "model is loading", "code": 503}}')
    assert caught.value.retryable
    with pytest.raises(ProviderError):
        parse_embeddings_response(b"<html>bad gateway</html>")
