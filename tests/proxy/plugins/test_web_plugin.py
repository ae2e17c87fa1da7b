"""The web plugin's pure parts: options and `:online`, the two engines' wire formats, where the
results go in the prompt, the citation spans, the hold's prompt bound and the price."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest
from django.test import override_settings

from proxy.gateway.errors import GatewayError
from proxy.gateway.validate import parse_request
from proxy.plugins.web import WebOptions, WebSearchError, prompt_bound_tokens, search_price_nanos, web_options
from proxy.plugins.web.engine import MAX_CONTENT_CHARS, EngineError, Result
from proxy.plugins.web.inject import citations, default_prompt, inject, results_message, search_query
from proxy.plugins.web.searxng import SearXNG
from proxy.plugins.web.tavily import Tavily
from proxy.tokens import prompt_tokens_bound

BOTH = {"WEB_SEARCH_SEARXNG_URL": "http://searx.local/", "WEB_SEARCH_TAVILY_API_KEY": "tvly-k"}


@override_settings(**BOTH, WEB_SEARCH_DEFAULT_ENGINE="")
def test_online_suffix_is_the_plugin_with_defaults_and_leaves_the_model_id() -> None:
    options, models = web_options(None, ["openai/gpt-4o:online", "anthropic/claude:online"])
    assert options == WebOptions(engine="tavily", max_results=5, search_prompt=None)
    assert models == ["openai/gpt-4o", "anthropic/claude"]
    assert web_options([{"id": "response-healing"}], ["a/b"]) == (None, ["a/b"])
    # `enabled: false` turns it off even with the suffix.
    assert web_options([{"id": "web", "enabled": False}], ["a/b:online"]) == (None, ["a/b"])


@override_settings(**BOTH, WEB_SEARCH_DEFAULT_ENGINE="searxng")
def test_options_and_engine_choice() -> None:
    plugin = {"id": "web", "max_results": 3, "search_prompt": "Use these:", "engine": "tavily"}
    assert web_options([plugin], ["a/b"])[0] == WebOptions(engine="tavily", max_results=3, search_prompt="Use these:")
    # OpenRouter's own engine names (clients send them as defaults) get ours.
    for name in ("exa", "native", None):
        assert web_options([{"id": "web", "engine": name}], ["a/b"])[0] == WebOptions(engine="searxng")
    for bad, message in [
        ({"max_results": 21}, "between 1 and 20"),
        ({"max_results": True}, "between 1 and 20"),
        ({"engine": "bing"}, "not available here (available: searxng, tavily)"),
        ({"search_prompt": ["x"]}, "must be a string"),
    ]:
        with pytest.raises(WebSearchError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
            web_options([{"id": "web", **bad}], ["a/b"])
        assert exc.value.status == 400


@override_settings(WEB_SEARCH_SEARXNG_URL="", WEB_SEARCH_TAVILY_API_KEY="", WEB_SEARCH_DEFAULT_ENGINE="")
def test_no_engine_configured_is_a_400_at_parse_time() -> None:
    raw = orjson.dumps({"model": "a/b:online", "messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(GatewayError, match="no search engine is configured") as exc:
        parse_request(raw)
    assert exc.value.status == 400


@override_settings(**BOTH, WEB_SEARCH_DEFAULT_ENGINE="")
def test_parse_request_strips_online_and_keeps_plugins_out_of_the_upstream_body() -> None:
    raw = orjson.dumps(
        {"model": "a/b:online", "models": ["c/d"], "messages": [{"role": "user", "content": "hi"}], "plugins": []}
    )
    req = parse_request(raw)
    assert req.models == ("a/b", "c/d")
    assert req.web == WebOptions(engine="tavily")
    assert "plugins" not in req.body
    assert parse_request(orjson.dumps({"model": "a/b", "messages": [{"role": "user", "content": "hi"}]})).web is None


def test_searxng_wire_format() -> None:
    engine = SearXNG("http://searx.local/")
    call = engine.request("django 5.2", 2)
    assert call.url == "http://searx.local/search"
    assert parse_qs(call.body.decode()) == {"q": ["django 5.2"], "format": ["json"]}
    body = {
        "results": [
            {"url": "https://a.example/1", "title": "A", "content": "x" * (MAX_CONTENT_CHARS + 50)},
            {"url": "https://a.example/1", "title": "A again", "content": "dup"},
            {"url": "javascript:alert(1)", "title": "bad", "content": "no"},
            {"url": "https://b.example/2", "title": "", "content": None},
            {"url": "https://c.example/3", "title": "C", "content": "c"},
        ]
    }
    results = engine.parse(200, json.dumps(body).encode(), 2)
    assert results == [
        Result("https://a.example/1", "A", "x" * MAX_CONTENT_CHARS),
        Result("https://b.example/2", "https://b.example/2", ""),
    ]
    for status, raw in [(500, b"{}"), (200, b"<html>"), (200, b'{"results": 3}')]:
        with pytest.raises(EngineError):
            engine.parse(status, raw, 2)


def test_tavily_wire_format() -> None:
    engine = Tavily("https://api.tavily.com", "tvly-k")
    call = engine.request("django 5.2", 30)
    assert call.url == "https://api.tavily.com/search"
    assert call.headers["Authorization"] == "Bearer tvly-k"
    sent = json.loads(call.body)
    assert sent["query"] == "django 5.2" and sent["max_results"] == 20 and sent["search_depth"] == "basic"
    body = {
        "query": "q",
        "results": [{"url": f"https://t.example/{i}", "title": f"T{i}", "content": "c"} for i in range(4)],
    }
    assert [r.url for r in engine.parse(200, json.dumps(body).encode(), 3)] == [
        f"https://t.example/{i}" for i in range(3)
    ]
    with pytest.raises(EngineError, match="401"):
        engine.parse(401, b'{"detail": {"error": "Unauthorized"}}', 3)


def test_query_is_the_last_user_text_and_results_go_before_it() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "latest   news"}, {"type": "image_url", "image_url": "u"}],
        },
    ]
    assert search_query(messages) == "latest news"
    assert search_query([{"role": "system", "content": "x"}]) == ""
    note = results_message([Result("https://a.example", "A", "alpha")], "PROMPT")
    assert note == {"role": "system", "content": "PROMPT\n\n[1] A\nURL: https://a.example\nalpha"}
    out = inject(messages, note)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "system", "user"]
    assert out[3] is note and out[4] is messages[3]


def test_default_prompt_has_the_date_and_the_citation_instruction() -> None:
    prompt = default_prompt(datetime(2026, 12, 3, tzinfo=UTC))
    assert prompt.startswith("A web search was conducted on December 3, 2026.")
    assert "[nytimes.com](https://nytimes.com/some-page)" in prompt


def test_citation_spans_point_at_the_link_in_the_answer() -> None:
    url = "https://docs.example/page"
    results = [Result(url, "Docs", "d"), Result("https://other.example", "Other", "o")]
    text = f"See [docs.example]({url}) for more."
    first, second = citations(results, text)
    cite = first["url_citation"]
    assert text[cite["start_index"] : cite["end_index"]] == f"[docs.example]({url})"
    assert second["url_citation"]["start_index"] == second["url_citation"]["end_index"] == 0
    bare = f"At {url} you find it"
    (cite_bare, _) = (c["url_citation"] for c in citations(results, bare))
    assert bare[cite_bare["start_index"] : cite_bare["end_index"]] == url


def test_prompt_bound_covers_the_longest_injection() -> None:
    """The hold's bound must cover what the search can add, however long the fields (clipped) are."""
    longest = Result.clipped("https://x.example/" + "é" * 1982, "標" * 1000, "😀" * 5000)
    assert longest is not None
    message = results_message([longest] * 7, default_prompt())
    added = prompt_tokens_bound({"messages": [message]}) - prompt_tokens_bound({"messages": []})
    assert added <= prompt_bound_tokens(7, None)


@override_settings(
    WEB_SEARCH_PRICE_NANOS=7_000_000, WEB_SEARCH_RESULT_PRICE_NANOS=1_000_000, WEB_SEARCH_INCLUDED_RESULTS=10
)
def test_price_per_search_then_per_result() -> None:
    assert search_price_nanos(0) == search_price_nanos(5) == search_price_nanos(10) == 7_000_000
    assert search_price_nanos(12) == 9_000_000
