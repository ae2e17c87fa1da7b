"""The public Models page: routed at /models/ (the nav's link), ranked search, filters, paging."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from openrouter_site.pages.catalog import PAGE_SIZE, search_rank
from proxy.catalog.services import catalog_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded(shipped_catalog: dict[str, Any]) -> dict[str, Any]:
    catalog_load(data=shipped_catalog)
    return shipped_catalog


def ids(response: Any) -> list[str]:
    return [row["id"] for row in response.context["rows"]]


def test_the_nav_address_answers_and_the_old_one_still_works(client: Client, loaded: dict[str, Any]) -> None:
    page = client.get("/models/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<title>Models ·" in html and html.count("<h1") == 1
    assert client.get("/models").status_code == 200


def test_it_pages_and_lists_only_text_output_models_by_default(client: Client, loaded: dict[str, Any]) -> None:
    first = client.get("/models/")
    total = first.context["page"].paginator.count
    assert len(ids(first)) == PAGE_SIZE < total
    everything = client.get("/models/", {"output": "all"}).context["page"].paginator.count
    assert everything > total  # embeddings, speech, rerank and the like only when asked for
    listed = client.get("/models/", {"q": "embedding"}).context["rows"]
    assert all("text" in row["outputs"] for row in listed)
    last = client.get("/models/", {"page": first.context["page"].paginator.num_pages})
    assert 0 < len(ids(last)) <= PAGE_SIZE


def test_search_ranks_exact_and_prefix_matches_first(client: Client, loaded: dict[str, Any]) -> None:
    found = ids(client.get("/models/", {"q": "claude"}))
    assert found, "the shipped catalog has Claude models"
    assert "claude" in found[0].split("/", 1)[-1]  # never a model whose description merely mentions Claude
    ranks = [search_rank({"id": i, "name": i}, "claude") for i in found]
    assert ranks == sorted(ranks)
    exact = ids(client.get("/models/", {"q": "openai/gpt-4o"}))
    assert exact[0] == "openai/gpt-4o"


def test_filters_change_the_result(client: Client, loaded: dict[str, Any]) -> None:
    base = client.get("/models/").context["page"].paginator.count
    tools = client.get("/models/", {"supports": "tools"})
    assert 0 < tools.context["page"].paginator.count < base
    assert all(row["tools"] for row in tools.context["rows"])
    both = client.get("/models/", {"supports": ["tools", "reasoning"]}).context["page"].paginator.count
    assert both <= tools.context["page"].paginator.count
    vision = client.get("/models/", {"input": "image"})
    assert all("image" in row["inputs"] for row in vision.context["rows"])
    providers = client.get("/models/").context["providers"]
    slug = providers[0][0]
    by_provider = client.get("/models/", {"provider": slug, "output": "all"})
    assert 0 < by_provider.context["page"].paginator.count < base
    assert client.get("/models/", {"provider": "no-such-provider"}).context["provider"] == ""


def test_the_model_page_shows_endpoints_prices_and_a_code_sample(client: Client, loaded: dict[str, Any]) -> None:
    listing = client.get("/models/", {"q": "openai/gpt-4o"}).content.decode()
    assert 'href="/models/openai/gpt-4o/"' in listing  # the list links to it, never to raw JSON
    page = client.get("/models/openai/gpt-4o/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<h1") == 1 and "<title>OpenAI: GPT-4o ·" in html
    assert len(page.context["endpoints"]) >= 1
    assert page.context["prompt"] == "$2.50"  # $0.0000025 per token
    assert '"model": "openai/gpt-4o"' in html and "http://testserver/api/v1/chat/completions" in html
    assert client.get("/models/nobody/nothing/").status_code == 404
