"""The build step on the real snapshots: nothing dropped, prices exact, fallbacks as documented."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from proxy.catalog.build import (
    DEFAULT_OUT,
    DEFAULT_SNAPSHOTS,
    catalog_dumps,
    per_token_str_to_nanos,
    usd_per_mtok_to_nanos,
)
from proxy.credentials import provider_env


def _snapshot(name: str) -> Any:
    path = next(DEFAULT_SNAPSHOTS.glob(name))
    return json.loads(path.read_text())


def _endpoints(catalog: dict[str, Any], model_id: str) -> dict[str, dict[str, Any]]:
    entry = next(m for m in catalog["models"] if m["record"]["id"] == model_id)
    return {e["tag"]: e for e in entry["endpoints"]}


def test_it_keeps_all_549_models_of_the_models_snapshot(built_catalog: dict[str, Any]) -> None:
    snapshot_ids = {m["id"] for m in _snapshot("openrouter-models-*.json")["data"]}
    catalog_ids = {m["record"]["id"] for m in built_catalog["models"]}
    assert len(snapshot_ids) == 549
    assert snapshot_ids <= catalog_ids
    records = {m["record"]["id"]: m["record"] for m in built_catalog["models"]}
    for model in _snapshot("openrouter-models-*.json")["data"]:
        assert records[model["id"]] == model  # verbatim: /models reproduces OpenRouter's record


def test_it_gives_every_model_at_least_one_endpoint(built_catalog: dict[str, Any]) -> None:
    empty = [m["record"]["id"] for m in built_catalog["models"] if not m["endpoints"]]
    assert empty == []


def test_it_turns_every_tagged_row_into_an_endpoint(built_catalog: dict[str, Any]) -> None:
    rows = _snapshot("openrouter-endpoints-by-model-*.json")["models"]
    tagged = sum(1 for m in rows for r in m["providers"] if r["tag"])
    assert tagged == 1203
    for model in rows:
        tags = {r["tag"] for r in model["providers"] if r["tag"]}
        if tags:
            assert set(_endpoints(built_catalog, model["id"])) == tags, model["id"]


def test_it_prices_llama_3_3_70b_exactly_as_listed(built_catalog: dict[str, Any]) -> None:
    eps = _endpoints(built_catalog, "meta-llama/llama-3.3-70b-instruct")
    deepinfra = eps["deepinfra/turbo"]
    assert (deepinfra["pricing"]["prompt"], deepinfra["pricing"]["completion"]) == (100_000_000, 320_000_000)
    assert deepinfra["quantization"] == "fp8"
    assert deepinfra["provider"] == "deepinfra"
    assert deepinfra["upstream_model"] == "meta-llama/Llama-3.3-70B-Instruct"
    groq = eps["groq"]
    assert (groq["pricing"]["prompt"], groq["pricing"]["completion"]) == (590_000_000, 790_000_000)
    assert eps["cloudflare/fp8"]["pricing"]["completion"] == 2_253_000_000
    assert eps["novita/bf16"]["context_length"] == 12288
    assert eps["novita/bf16"]["max_completion_tokens"] == 12288  # capped at the endpoint's context


def test_it_gives_the_headline_endpoint_the_models_cache_prices(built_catalog: dict[str, Any]) -> None:
    openai = _endpoints(built_catalog, "openai/gpt-4o")["openai"]
    assert openai["upstream_model"] == "gpt-4o"
    assert openai["pricing"]["prompt"] == 2_500_000_000
    assert openai["pricing"]["cache_read"] == 1_250_000_000


def test_it_fills_cache_prices_from_models_dev_only_for_the_same_offering(built_catalog: dict[str, Any]) -> None:
    eps = _endpoints(built_catalog, "deepseek/deepseek-v4-pro")
    deepinfra = eps["deepinfra/fp8"]  # models.dev lists DeepInfra at the same 1.30/2.60, with cache reads at 0.10
    assert (deepinfra["pricing"]["prompt"], deepinfra["pricing"]["cache_read"]) == (1_300_000_000, 100_000_000)
    assert deepinfra["max_completion_tokens"] == 16384
    assert eps["novita/fp8"]["pricing"]["cache_read"] is None  # models.dev's Novita price differs: not used


def test_it_keeps_the_dearer_row_when_one_tag_appears_twice(built_catalog: dict[str, Any]) -> None:
    together = _endpoints(built_catalog, "google/gemma-4-31b-it")["together"]
    assert (together["pricing"]["prompt"], together["pricing"]["completion"]) == (390_000_000, 970_000_000)


def test_it_serves_models_without_rows_at_the_author_or_openrouter(built_catalog: dict[str, Any]) -> None:
    alias = _endpoints(built_catalog, "~anthropic/claude-opus-latest")["anthropic"]
    assert alias["upstream_model"] == "claude-opus-5"
    assert alias["pricing"]["prompt"] == 5_000_000_000
    voyage = _endpoints(built_catalog, "voyageai/voyage-4")
    assert list(voyage) == ["openrouter"]
    assert voyage["openrouter"]["upstream_model"] == "voyageai/voyage-4"
    auto = _endpoints(built_catalog, "openrouter/auto")["openrouter"]
    assert auto["variant"] == "router"


def test_it_marks_free_variants(built_catalog: dict[str, Any]) -> None:
    free = next(m for m in built_catalog["models"] if m["record"]["id"] == "z-ai/glm-5.2:free")
    assert free["endpoints"]
    assert {e["variant"] for e in free["endpoints"]} == {"free"}
    assert {e["pricing"]["prompt"] for e in free["endpoints"]} == {0}


def test_it_sets_adapters_and_known_base_urls(built_catalog: dict[str, Any]) -> None:
    providers = {p["slug"]: p for p in built_catalog["providers"]}
    assert providers["anthropic"]["adapter"] == "anthropic"
    assert providers["google-ai-studio"]["adapter"] == "gemini"
    assert providers["google-vertex"]["adapter"] == "gemini"
    assert providers["deepinfra"]["adapter"] == "openai"
    assert providers["groq"]["base_url"] == "https://api.groq.com/openai/v1"
    assert providers["openai"]["base_url"] == "https://api.openai.com/v1"
    assert providers["azure"]["base_url"] == ""  # per-account: AZURE_BASE_URL must be set
    assert providers["novita"]["retains_prompts"] is True  # unknown policy: assume the worst
    assert len(_snapshot("openrouter-providers-*.json")["data"]) == 82
    assert {p["slug"] for p in _snapshot("openrouter-providers-*.json")["data"]} <= set(providers)


def test_it_matches_the_committed_catalog_file(built_catalog: dict[str, Any]) -> None:
    """catalog.json is generated: rebuilding from the same snapshots must give the same bytes."""
    assert DEFAULT_OUT.read_text(encoding="utf-8") == catalog_dumps(built_catalog)


@pytest.mark.parametrize(
    ("usd_per_mtok", "nanos"),
    [(0.1, 100_000_000), (0.59, 590_000_000), (2.253, 2_253_000_000), (0, 0), (15, 15_000_000_000)],
)
def test_it_converts_list_prices_exactly(usd_per_mtok: float, nanos: int) -> None:
    assert usd_per_mtok_to_nanos(usd_per_mtok) == nanos


def test_it_converts_per_token_strings_rounding_fractions_up() -> None:
    assert per_token_str_to_nanos("0.0000025") == 2_500_000_000
    assert per_token_str_to_nanos("0.00000838323353293413") == 8_383_233_533  # 8383233532.93... ceiled
    assert per_token_str_to_nanos("-1") is None
    assert per_token_str_to_nanos(None) is None


def test_it_reads_provider_credentials_from_the_settings(settings: Settings) -> None:
    settings.PROVIDER_ENV = {
        "DEEPINFRA_API_KEY": "di-key",
        "GOOGLE_VERTEX_BASE_URL": "https://vertex.example/v1",
        "GEMINI_API_KEY": "gem-key",
    }
    assert provider_env("deepinfra") == ("di-key", None)
    assert provider_env("google-vertex") == (None, "https://vertex.example/v1")
    assert provider_env("google-ai-studio")[0] == "gem-key"
    settings.PROVIDER_ENV = {**settings.PROVIDER_ENV, "GOOGLE_AI_STUDIO_API_KEY": "canonical"}
    assert provider_env("google-ai-studio")[0] == "canonical"
