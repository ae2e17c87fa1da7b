"""The web search plugin through the real gateway: a SearXNG-shaped and a Tavily-shaped stand-in
(tests/e2e/websearch.py), the mock provider upstream, the openai SDK as the client.

What is checked: the engine is asked for the user's question, the results reach the upstream in a
system message before the user message, citations come back as `url_citation` annotations
(non-streamed on the message, streamed on a delta), `:online` is the plugin with defaults, the
search price is in `usage.cost`, the generation and the ledger, and an engine that fails gives a 502
with no credit moved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from billing.ledger import org_balance_nanos
from billing.models import Generation
from tests.e2e.support import (
    GRANT_NANOS,
    Gateway,
    World,
    assert_charged,
    expected_cost,
    gateway_env,
    generation,
    running_gateway,
    settle_usage,
    usd,
)
from tests.e2e.websearch import PAGES, QUESTION, StandIn, engines, search_price, web_gateway_env
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider, free_port

pytestmark = pytest.mark.e2e

__all__ = ["engines"]  # the stand-ins' fixture, used by the tests below


@pytest.fixture
def web_gateway(
    world: World, mock_provider: MockProvider, engines: dict[str, StandIn], tmp_path: Path
) -> Iterator[Gateway]:
    with running_gateway(web_gateway_env(world, mock_provider, engines), tmp_path / "gateway.log") as gw:
        yield gw


@pytest.fixture
def sdk(web_gateway: Gateway, world: World) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=web_gateway.api_url, api_key=world.key.key, max_retries=0, timeout=30) as client:
        yield client


def injected(mock: MockProvider) -> list[dict[str, Any]]:
    [request] = mock.requests
    return list(request.body["messages"])


def assert_results_injected(mock: MockProvider, snippet: str, count: int) -> None:
    messages = injected(mock)
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    assert system.startswith("A web search was conducted on ")
    assert "Cite them using markdown links" in system
    for i, page in enumerate(PAGES[:count]):
        assert page["url"] in system and f"{snippet} {i}" in system
    for page in PAGES[count:]:
        assert page["url"] not in system
    assert messages[1] == {"role": "user", "content": QUESTION}


def assert_citations(annotations: list[Any], snippet: str, count: int) -> None:
    assert [a["type"] for a in annotations] == ["url_citation"] * count
    for i, note in enumerate(annotations):
        cite = note["url_citation"]
        assert cite["url"] == PAGES[i]["url"] and cite["title"] == PAGES[i]["title"]
        assert cite["content"] == f"{snippet} {i}"
        # The mock's answer links nothing, so no span in it is cited.
        assert (cite["start_index"], cite["end_index"]) == (0, 0)


def test_plugin_non_streamed_searxng(
    sdk: openai.OpenAI, world: World, mock_provider: MockProvider, engines: dict[str, StandIn]
) -> None:
    completion = sdk.chat.completions.create(
        model="mock-openai/ok",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"plugins": [{"id": "web", "max_results": 3}]},
    )
    [asked] = engines["searxng"].requests
    assert asked["params"] == {"q": QUESTION, "format": "json"}
    assert not engines["tavily"].requests
    assert_results_injected(mock_provider, "SearXNG snippet", 3)

    message = completion.choices[0].message
    assert message.content == "".join(DEFAULT_PIECES)
    assert message.annotations is not None  # parsed by the SDK's own Annotation model
    assert [a.url_citation.url for a in message.annotations] == [p["url"] for p in PAGES]
    assert_citations([a.model_dump() for a in message.annotations], "SearXNG snippet", 3)
    notes = message.model_dump()["annotations"]
    assert all("content" in n["url_citation"] for n in notes)

    model_cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    total = model_cost + search_price(3)
    usage = completion.usage.model_dump() if completion.usage else {}
    assert usage["cost"] == pytest.approx(usd(total))
    assert usage["server_tool_use"] == {"web_search_requests": 1}
    assert usage["cost_details"]["web_search_cost"] == pytest.approx(usd(search_price(3)))
    record = generation(completion.id)
    assert_charged(world, record, total)
    assert (record.web_search_engine, record.num_search_results) == ("searxng", 3)
    reported = httpx.get(
        f"{sdk.base_url}generation", params={"id": completion.id}, headers={"Authorization": f"Bearer {world.key.key}"}
    ).json()["data"]
    assert (reported["web_search_engine"], reported["num_search_results"]) == ("searxng", 3)


def test_online_suffix_streamed_tavily(
    sdk: openai.OpenAI, world: World, mock_provider: MockProvider, engines: dict[str, StandIn]
) -> None:
    stream = sdk.chat.completions.create(
        model="mock-openai/ok:online",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        # `:online` is the plugin with its defaults; naming an engine picks it.
        extra_body={"plugins": [{"id": "web", "engine": "tavily", "max_results": 2}]},
    )
    chunks = list(stream)
    [asked] = engines["tavily"].requests
    assert asked["params"]["query"] == QUESTION and asked["params"]["max_results"] == 2
    assert_results_injected(mock_provider, "Tavily snippet", 2)
    assert mock_provider.requests[0].model == "mock-ok"  # `:online` is not a model the upstream sees

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(DEFAULT_PIECES)
    notes = [n for c in chunks if c.choices for n in (c.choices[0].delta.model_extra or {}).get("annotations") or ()]
    assert_citations(notes, "Tavily snippet", 2)
    assert {c.model for c in chunks} == {"mock-openai/ok"}
    total = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)) + search_price(2)
    assert chunks[-1].usage is not None and chunks[-1].usage.model_dump()["cost"] == pytest.approx(usd(total))
    assert_charged(world, generation(chunks[0].id), total)


def test_online_suffix_alone_uses_default_engine_and_five_results(
    web_gateway: Gateway, world: World, mock_provider: MockProvider, engines: dict[str, StandIn]
) -> None:
    res = httpx.post(
        f"{web_gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-anthropic/ok:online", "messages": [{"role": "user", "content": QUESTION}]},
        timeout=30,
    )
    assert res.status_code == 200, res.text
    assert len(engines["searxng"].requests) == 1
    [upstream] = mock_provider.requests
    # Anthropic carries the system prompt in its own field: the results went there.
    system = json.dumps(upstream.body.get("system"))
    assert all(p["url"] in system for p in PAGES)
    body = res.json()
    assert len(body["choices"][0]["message"]["annotations"]) == len(PAGES)
    assert body["usage"]["cost"] == pytest.approx(
        usd(expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)) + search_price(3))
    )


@pytest.mark.parametrize("stream", [False, True])
def test_engine_down_is_a_502_and_moves_no_credit(
    sdk: openai.OpenAI, world: World, mock_provider: MockProvider, engines: dict[str, StandIn], stream: bool
) -> None:
    engines["searxng"].fail = True
    with pytest.raises(openai.APIStatusError) as exc:
        sdk.chat.completions.create(
            model="mock-openai/ok", messages=[{"role": "user", "content": QUESTION}], stream=stream,
            extra_body={"plugins": [{"id": "web"}]},
        )  # fmt: skip
    assert exc.value.status_code == 502
    error = exc.value.response.json()["error"]
    assert error["code"] == 502 and "Web search failed (searxng)" in error["message"]
    assert error["metadata"]["error_type"] == "web_search_failed"
    assert not mock_provider.requests  # the model was never asked
    time.sleep(0.5)
    settle_usage()
    assert not Generation.objects.filter(organization=world.org).exists()
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_unreachable_engine_is_a_502(
    world: World, mock_provider: MockProvider, engines: dict[str, StandIn], tmp_path: Path
) -> None:
    env = gateway_env(world, mock_provider)
    env.update(WEB_SEARCH_SEARXNG_URL=f"http://127.0.0.1:{free_port()}", WEB_SEARCH_TIMEOUT_SECONDS="2")
    with running_gateway(env, tmp_path / "gateway.log") as gw:
        res = httpx.post(
            f"{gw.api_url}/chat/completions",
            headers={"Authorization": f"Bearer {world.key.key}"},
            json={"model": "mock-openai/ok:online", "messages": [{"role": "user", "content": QUESTION}]},
            timeout=30,
        )
    assert res.status_code == 502, res.text
    assert not mock_provider.requests
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_bad_options_are_400_before_any_search(
    web_gateway: Gateway, world: World, mock_provider: MockProvider, engines: dict[str, StandIn]
) -> None:
    for plugin, message in [
        ({"id": "web", "max_results": 0}, "max_results must be an integer between 1 and 20"),
        ({"id": "web", "engine": "bing"}, "engine 'bing' is not available here (available: searxng, tavily)"),
        ({"id": "web", "search_prompt": 3}, "search_prompt must be a string"),
    ]:
        res = httpx.post(
            f"{web_gateway.api_url}/chat/completions",
            headers={"Authorization": f"Bearer {world.key.key}"},
            json={"model": "mock-openai/ok", "messages": [{"role": "user", "content": QUESTION}], "plugins": [plugin]},
            timeout=30,
        )
        assert res.status_code == 400 and message in res.json()["error"]["message"], res.text
    assert not engines["searxng"].requests and not engines["tavily"].requests and not mock_provider.requests


def test_broke_org_is_refused_before_the_search(
    web_gateway: Gateway, world: World, mock_provider: MockProvider, engines: dict[str, StandIn]
) -> None:
    """The hold includes the search price, so an organization without credit never gets a free search."""
    res = httpx.post(
        f"{web_gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.broke_key.key}"},
        json={"model": "mock-openai/ok:online", "messages": [{"role": "user", "content": QUESTION}]},
        timeout=30,
    )
    assert res.status_code == 402, res.text
    assert not engines["searxng"].requests and not mock_provider.requests
