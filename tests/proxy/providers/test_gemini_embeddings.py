"""Gemini embeddings: an OpenAI-style body as embedContent / batchEmbedContents, and recorded Gemini
answers read back as OpenAI `data` items (no usage: the gateway estimates and marks it)."""

from __future__ import annotations

import json

import pytest

from proxy.providers.base import ProviderError, Target
from proxy.providers.gemini.embeddings import build_embeddings_request, parse_embeddings_response
from tests.proxy.providers.support import fixture_bytes, fixture_json

TARGET = Target(
    base_url="https://generativelanguage.googleapis.com",
    api_key="g-key",
    upstream_model="models/gemini-embedding-001",
    provider_slug="google-ai-studio",
)


def test_one_text_goes_to_embed_content_with_the_task_type_and_dimensions() -> None:
    body = {"model": "google/gemini-embedding-001", "input": "What is the meaning of life?"}
    call = build_embeddings_request({**body, "input_type": "query", "dimensions": 4, "user": "u"}, TARGET)
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001"
    assert call.url == f"{base}:embedContent"
    assert call.headers["x-goog-api-key"] == "g-key" and "Authorization" not in call.headers
    assert json.loads(call.body) == fixture_json("gemini", "embed_content.request.json")


def test_a_list_goes_to_batch_embed_contents_in_order() -> None:
    texts = ["What is the meaning of life?", "How does the brain work?"]
    target = Target(
        base_url="http://127.0.0.1:9/v1beta/", api_key="k", upstream_model="gemini-embedding-001", provider_slug="g"
    )
    call = build_embeddings_request({"model": "m", "input": texts, "input_type": "unknown-kind"}, target)
    assert call.url == "http://127.0.0.1:9/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert json.loads(call.body) == fixture_json("gemini", "batch_embed_contents.request.json")


def test_token_arrays_are_refused_without_a_retry() -> None:
    with pytest.raises(ProviderError) as caught:
        build_embeddings_request({"model": "m", "input": [1, 2, 3]}, TARGET)
    assert caught.value.status == 400 and not caught.value.retryable


def test_a_recorded_embed_content_answer_has_no_usage() -> None:
    parsed = parse_embeddings_response(fixture_bytes("gemini", "embed_content.response.json"), "gemini-embedding-001")
    assert parsed.prompt_tokens is None and parsed.upstream_model == "gemini-embedding-001"
    assert parsed.data == [
        {"object": "embedding", "index": 0, "embedding": [-0.022374554, -0.004560777, 0.013309286, -0.0545072]}
    ]


def test_a_recorded_batch_answer_keeps_the_order_and_reads_usage_when_sent() -> None:
    parsed = parse_embeddings_response(fixture_bytes("gemini", "batch_embed_contents.response.json"))
    assert [d["index"] for d in parsed.data] == [0, 1]
    assert parsed.data[1]["embedding"] == [0.008932114, -0.031106228, 0.002513876]
    with_usage = {
        **fixture_json("gemini", "batch_embed_contents.response.json"),
        "usageMetadata": {"promptTokenCount": 9},
    }
    assert parse_embeddings_response(json.dumps(with_usage).encode()).prompt_tokens == 9


def test_errors_and_garbage_are_provider_errors() -> None:
    with pytest.raises(ProviderError) as caught:
        parse_embeddings_response(fixture_bytes("gemini", "embed_error_400.error.json"))
    assert caught.value.status == 400 and not caught.value.retryable
    for bad in (b"<html>bad gateway</html>", b'{"embeddings": [{"nope": 1}]}', b'{"candidates": []}'):
        with pytest.raises(ProviderError) as caught:
            parse_embeddings_response(bad)
        assert caught.value.retryable
