"""POST /api/v1/embeddings through the official openai SDK (float and base64) and OpenRouter's SDK:
routed, held and settled like chat, billed per input token, recorded with api_type "embeddings"."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from billing.models import Generation
from proxy.gateway.embeddings import prompt_tokens_estimate
from proxy.models import Endpoint, Model, Provider
from tests.e2e.support import (
    COMPLETION_NANOS_PER_MTOK,
    PROMPT_NANOS_PER_MTOK,
    Gateway,
    World,
    assert_charged,
    expected_cost,
    generation,
    no_generation,
    usd,
)
from tests.mockprovider import MockProvider

pytestmark = pytest.mark.e2e

# The mock: one vector per input, element d of input i = (i + 1) / 8 + d / 4 (exact in float32).
# One prompt token per whitespace-separated word.


def vector(i: int, size: int = 3) -> list[float]:
    return [(i + 1) * 0.125 + d * 0.25 for d in range(size)]


def _embedding_model(slug: str, endpoints: list[tuple[Provider, str]]) -> None:
    model = Model.objects.create(
        slug=slug,
        canonical_slug=slug,
        name=slug,
        context_length=8192,
        input_modalities=["text"],
        output_modalities=["embeddings"],
    )
    for provider, upstream in endpoints:
        Endpoint.objects.create(
            model=model,
            provider=provider,
            tag=provider.slug,
            upstream_model=upstream,
            context_length=8192,
            prompt_nanos_per_mtok=PROMPT_NANOS_PER_MTOK,
            completion_nanos_per_mtok=COMPLETION_NANOS_PER_MTOK,
        )


@pytest.fixture
def embedding_models(world: World) -> None:
    """Seeded before the gateway starts (request this fixture before `client` / `gateway`)."""
    p = world.providers
    _embedding_model("mock-openai/embed", [(p["mock-openai"], "mock-ok")])
    _embedding_model("embed/failover", [(p["mock-openai"], "mock-503"), (p["mock-slow"], "mock-ok")])
    _embedding_model("mock-anthropic/embed", [(p["mock-anthropic"], "mock-ok")])


def test_float_embeddings_are_billed_per_input_token(
    embedding_models: None, client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    res = client.embeddings.create(
        model="mock-openai/embed", input=["hello brave world", "two words"], encoding_format="float"
    )
    assert [d.embedding for d in res.data] == [vector(0), vector(1)]
    assert [d.index for d in res.data] == [0, 1]
    assert res.model == "mock-openai/embed"
    assert res.usage.prompt_tokens == 5 and res.usage.total_tokens == 5
    cost = expected_cost(5, 0)
    assert (res.usage.model_extra or {})["cost"] == pytest.approx(usd(cost))
    upstream = mock_provider.requests_for("mock-ok")[-1]
    assert upstream.path == "/v1/embeddings" and upstream.body["model"] == "mock-ok"
    assert upstream.headers["authorization"] == "Bearer sk-upstream-openai"
    gen = generation(extra(res)["id"])
    assert gen.api_type == "embeddings" and gen.tokens_prompt == 5 and gen.tokens_completion == 0
    assert_charged(world, gen, cost)


def extra(obj: Any) -> dict[str, Any]:
    return obj.model_extra or {}


def test_base64_is_what_the_openai_sdk_asks_for_by_default(
    embedding_models: None, client: openai.OpenAI, world: World
) -> None:
    res = client.embeddings.create(model="mock-openai/embed", input="one two three four", dimensions=4)
    assert res.data[0].embedding == vector(0, 4)  # the SDK sent base64 and decoded our float32s
    assert_charged(world, generation(extra(res)["id"]), expected_cost(4, 0))


def test_token_arrays_and_the_openrouter_sdk(embedding_models: None, openrouter_client: Any, world: World) -> None:
    res = openrouter_client.embeddings.generate(model="mock-openai/embed", input=[[1, 2, 3], [4, 5]])
    assert res.usage.prompt_tokens == 5 and len(res.data) == 2
    assert res.usage.cost_details.upstream_inference_prompt_cost == pytest.approx(usd(expected_cost(5, 0)))
    assert res.usage.cost_details.upstream_inference_completions_cost == 0
    assert generation(res.id).api_type == "embeddings"
    models = openrouter_client.embeddings.list_models()
    assert {m.id for m in models.result.data} == {"mock-openai/embed", "embed/failover", "mock-anthropic/embed"}


def test_a_failing_endpoint_fails_over(embedding_models: None, client: openai.OpenAI, world: World) -> None:
    res = client.embeddings.create(
        model="embed/failover",
        input="a b",
        encoding_format="float",
        extra_body={"provider": {"order": ["mock-openai", "mock-slow"]}},
    )
    assert extra(res)["provider"] == "Mock Slow" and res.data[0].embedding == vector(0)
    gen = generation(extra(res)["id"])
    assert [r["status"] for r in gen.provider_responses] == [503, 200]
    assert_charged(world, gen, expected_cost(2, 0))


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "mock-openai/embed", "input": ""}, 400),
        ({"model": "mock-openai/embed", "input": [1, "x"]}, 400),
        ({"model": "mock-openai/embed", "input": "x", "encoding_format": "int8"}, 400),
        ({"model": "mock-openai/embed", "input": "x", "dimensions": 0}, 400),
        ({"input": "x"}, 400),
        ({"model": "nobody/embed", "input": "x"}, 400),  # as chat answers an unknown model id
        ({"model": "mock-anthropic/embed", "input": "x"}, 404),  # no adapter here speaks embeddings
    ],
)
def test_bad_requests_cost_nothing(
    embedding_models: None, gateway: Gateway, world: World, body: dict[str, Any], status: int
) -> None:
    res = httpx.post(
        f"{gateway.api_url}/embeddings", json=body, headers={"Authorization": f"Bearer {world.key.key}"}, timeout=10
    )
    assert res.status_code == status, res.text
    assert res.json()["error"]["code"] == status
    no_generation("", wait=0.2)
    assert not Generation.objects.exists()


def test_it_needs_a_key_and_credit(embedding_models: None, gateway: Gateway, world: World) -> None:
    body = {"model": "mock-openai/embed", "input": "x"}
    assert httpx.post(f"{gateway.api_url}/embeddings", json=body, timeout=10).status_code == 401
    broke = httpx.post(
        f"{gateway.api_url}/embeddings",
        json=body,
        headers={"Authorization": f"Bearer {world.broke_key.key}"},
        timeout=10,
    )
    assert broke.status_code == 402
    assert httpx.get(f"{gateway.api_url}/embeddings", timeout=10).status_code == 405


# -- Gemini: embedContent / batchEmbedContents, which report no usage ---------------------------


@pytest.fixture
def gemini_embedding_model(world: World) -> None:
    """Seeded before the gateway starts (request this fixture before `client` / `gateway`)."""
    _embedding_model("mock-gemini/embed", [(world.providers["mock-gemini"], "mock-embed-gemini")])


def test_gemini_batch_embeddings_are_billed_on_the_estimate(
    gemini_embedding_model: None, client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    texts = ["hello brave world", "two words"]
    res = client.embeddings.create(
        model="mock-gemini/embed",
        input=texts,
        encoding_format="float",
        dimensions=4,
        extra_body={"input_type": "query"},
    )
    assert [d.embedding for d in res.data] == [vector(0, 4), vector(1, 4)]
    assert extra(res)["provider"] == "Mock Gemini"
    tokens = prompt_tokens_estimate(texts)  # Gemini says nothing: the gateway's own estimate, marked
    assert tokens == 8 and res.usage.prompt_tokens == tokens
    upstream = mock_provider.requests_for("mock-embed-gemini")[-1]
    assert upstream.path == "/v1beta/models/mock-embed-gemini:batchEmbedContents"
    assert upstream.headers["x-goog-api-key"] == "sk-upstream-gemini"
    assert upstream.body["requests"][1] == {
        "model": "models/mock-embed-gemini",
        "content": {"parts": [{"text": "two words"}]},
        "taskType": "RETRIEVAL_QUERY",
        "outputDimensionality": 4,
    }
    gen = generation(extra(res)["id"])
    assert gen.api_type == "embeddings" and gen.tokens_prompt == tokens and gen.usage_estimated
    assert (res.usage.model_extra or {})["cost"] == pytest.approx(usd(expected_cost(tokens, 0)))
    assert_charged(world, gen, expected_cost(tokens, 0))


def test_gemini_single_text_in_base64_as_the_sdk_asks_by_default(
    gemini_embedding_model: None, client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    res = client.embeddings.create(model="mock-gemini/embed", input="one two three four")
    assert res.data[0].embedding == vector(0)  # Gemini sent floats; the gateway encoded, the SDK decoded
    upstream = mock_provider.requests_for("mock-embed-gemini")[-1]
    assert upstream.path == "/v1beta/models/mock-embed-gemini:embedContent"
    tokens = prompt_tokens_estimate("one two three four")
    assert_charged(world, generation(extra(res)["id"]), expected_cost(tokens, 0))


def test_token_arrays_are_not_sent_to_gemini(gemini_embedding_model: None, gateway: Gateway, world: World) -> None:
    res = httpx.post(
        f"{gateway.api_url}/embeddings",
        json={"model": "mock-gemini/embed", "input": [1, 2, 3]},
        headers={"Authorization": f"Bearer {world.key.key}"},
        timeout=10,
    )
    assert res.status_code == 404, res.text
    assert not Generation.objects.exists()
