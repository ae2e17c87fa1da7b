"""The public catalog API: /models (exact OpenRouter records), /models/count, /endpoints, /providers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from proxy.catalog.build import DEFAULT_SNAPSHOTS
from proxy.catalog.services import catalog_load
from proxy.models import Model
from proxy.selectors import catalog_cache_clear

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(shipped_catalog: dict[str, Any]) -> dict[str, Any]:
    catalog_load(data=shipped_catalog)
    return shipped_catalog


def _snapshot_models() -> dict[str, dict[str, Any]]:
    path = next(DEFAULT_SNAPSHOTS.glob("openrouter-models-*.json"))
    return {m["id"]: m for m in json.loads(path.read_text())["data"]}


def test_it_lists_models_without_a_key_exactly_as_openrouter_does(client: Client, loaded: dict[str, Any]) -> None:
    response = client.get("/api/v1/models?output_modalities=all")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    ours = {m["id"]: m for m in response.json()["data"]}
    for model_id, record in _snapshot_models().items():
        assert ours[model_id] == record  # same field set, same values, prices as per-token strings
    gpt4o = ours["openai/gpt-4o"]
    assert set(gpt4o) == set(_snapshot_models()["openai/gpt-4o"])
    assert gpt4o["pricing"]["prompt"] == "0.0000025"


def test_it_lists_text_models_by_default_and_filters(client: Client, loaded: dict[str, Any]) -> None:
    default = client.get("/api/v1/models").json()["data"]
    assert default
    assert all("text" in m["architecture"]["output_modalities"] for m in default)
    snapshot_text = {k for k, v in _snapshot_models().items() if "text" in v["architecture"]["output_modalities"]}
    assert len(snapshot_text) == 414
    assert snapshot_text <= {m["id"] for m in default}

    embeddings = client.get("/api/v1/models?output_modalities=embeddings").json()["data"]
    assert len(embeddings) == 34
    tools = client.get("/api/v1/models?supported_parameters=tools,reasoning").json()["data"]
    assert tools
    assert all({"tools", "reasoning"} <= set(m["supported_parameters"]) for m in tools)
    llama = client.get("/api/v1/models?q=LLAMA 3.3 70B").json()["data"]
    assert "meta-llama/llama-3.3-70b-instruct" in {m["id"] for m in llama}
    assert client.get("/api/v1/models/count?output_modalities=all").json() == {"data": {"count": len(loaded["models"])}}


def test_it_serves_cached_bytes_until_the_catalog_changes(client: Client, loaded: dict[str, Any]) -> None:
    first = client.get("/api/v1/models").content
    Model.objects.filter(slug="openai/gpt-4o").update(name="Renamed")
    assert client.get("/api/v1/models").content == first  # served from the per-version cache
    catalog_cache_clear()
    assert b'"Renamed"' in client.get("/api/v1/models").content


def test_it_hides_disabled_models(client: Client, loaded: dict[str, Any]) -> None:
    Model.objects.filter(slug="openai/gpt-4o").update(is_enabled=False)
    ids = {m["id"] for m in client.get("/api/v1/models").json()["data"]}
    assert "openai/gpt-4o" not in ids
    assert client.get("/api/v1/models/openai/gpt-4o/endpoints").status_code == 404


def test_it_lists_a_models_endpoints_with_per_endpoint_prices(client: Client, loaded: dict[str, Any]) -> None:
    response = client.get("/api/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints")

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == "meta-llama/llama-3.3-70b-instruct"
    assert set(data["architecture"]) == {
        "tokenizer",
        "instruct_type",
        "modality",
        "input_modalities",
        "output_modalities",
    }
    by_tag = {e["tag"]: e for e in data["endpoints"]}
    deepinfra = by_tag["deepinfra/turbo"]
    assert deepinfra["provider_name"] == "DeepInfra"
    assert deepinfra["pricing"] == {
        "prompt": "0.0000001",
        "completion": "0.00000032",
        "request": "0",
        "image": "0",
        "discount": 0,
    }
    assert deepinfra["quantization"] == "fp8"
    assert deepinfra["context_length"] == 131072
    assert by_tag["groq"]["pricing"]["prompt"] == "0.00000059"
    assert {"uptime_last_30m", "latency_last_30m", "throughput_last_30m", "status", "max_prompt_tokens"} <= set(
        deepinfra
    )
    prices = [float(e["pricing"]["prompt"]) for e in data["endpoints"]]
    assert prices == sorted(prices)


def test_it_finds_a_model_by_its_canonical_slug(client: Client, loaded: dict[str, Any]) -> None:
    record = _snapshot_models()["openai/gpt-4o"]
    response = client.get(record["links"]["details"])
    assert response.status_code == 200
    assert response.json()["data"]["id"] == "openai/gpt-4o"


def test_it_answers_an_unknown_model_with_a_404_envelope(client: Client, loaded: dict[str, Any]) -> None:
    response = client.get("/api/v1/models/nobody/nothing/endpoints")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 404, "message": "Model nobody/nothing not found", "metadata": None}}


def test_it_lists_providers_in_openrouters_shape(client: Client, loaded: dict[str, Any]) -> None:
    data = client.get("/api/v1/providers").json()["data"]
    by_slug = {p["slug"]: p for p in data}
    assert len(data) >= 82
    assert set(by_slug["openai"]) == {
        "name",
        "slug",
        "privacy_policy_url",
        "terms_of_service_url",
        "status_page_url",
        "headquarters",
        "datacenters",
    }
    assert by_slug["deepinfra"]["name"] == "DeepInfra"
    assert by_slug["google-vertex"]["name"] == "Google"


def test_it_renders_the_public_models_page(client: Client, loaded: dict[str, Any]) -> None:
    response = client.get("/models?q=llama-3.3-70b")
    assert response.status_code == 200
    body = response.content.decode()
    assert "meta-llama/llama-3.3-70b-instruct" in body
    assert "openai/gpt-4o" not in body
