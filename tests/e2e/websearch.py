"""Search engine stand-ins for the web search plugin: a SearXNG-shaped and a Tavily-shaped server (small
http.server apps on free ports), and the gateway environment that points the plugin at them.

Used by tests/e2e/test_web_search.py (the openai SDK) and tests/e2e/test_node_sdks.py (the AI SDK
provider); a test module imports the `engines` fixture to use it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.support import World, gateway_env
from tests.mockprovider import MockProvider

TAVILY_KEY = "tvly-test-key"
SEARCH_NANOS = 7_000_000  # per search, the first 2 results included (set below), then per result
RESULT_NANOS = 1_000_000
INCLUDED = 2
QUESTION = "What is new in Django 5.2?"
PAGES = [
    {"url": "https://www.djangoproject.com/weblog/2025/apr/02/django-52-released/", "title": "Django 5.2 released"},
    {"url": "https://docs.djangoproject.com/en/5.2/releases/5.2/", "title": "Django 5.2 release notes"},
    {"url": "https://example.org/django-5-2-review", "title": "A review of Django 5.2"},
]


@dataclass
class StandIn:
    """One search engine stand-in: what it was asked, and whether it answers."""

    kind: str  # "searxng" | "tavily"
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(engine: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # SearXNG answers GET and POST alike
            parts = urlsplit(self.path)
            self._search(parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            if engine.kind == "searxng":
                self._search(path, {k: v[0] for k, v in parse_qs(raw.decode()).items()})
            else:
                self._search(path, json.loads(raw))

        def _search(self, path: str, params: dict[str, Any]) -> None:
            engine.requests.append({"path": path, "params": params, "headers": dict(self.headers)})
            if path != "/search":
                return self._answer(404, {"detail": "not found"})
            if engine.fail:
                return self._answer(500, {"detail": "engine broke"})
            if engine.kind == "searxng":
                if params.get("format") != "json":
                    return self._answer(403, {"detail": "format not allowed"})
                rows = [{**p, "content": f"SearXNG snippet {i}", "engine": "duckduckgo"} for i, p in enumerate(PAGES)]
                return self._answer(200, {"query": params.get("q"), "number_of_results": len(rows), "results": rows})
            if self.headers.get("Authorization") != f"Bearer {TAVILY_KEY}":
                return self._answer(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
            rows = [{**p, "content": f"Tavily snippet {i}", "score": 0.9} for i, p in enumerate(PAGES)]
            return self._answer(
                200, {"query": params["query"], "results": rows[: params.get("max_results", 5)], "response_time": 0.1}
            )

    return Handler


@pytest.fixture
def engines() -> Iterator[dict[str, StandIn]]:
    found = {"searxng": StandIn("searxng"), "tavily": StandIn("tavily")}
    servers = []
    for engine in found.values():
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(engine))
        engine.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield found
    for server in servers:
        server.shutdown()
        server.server_close()


def web_gateway_env(world: World, mock: MockProvider, engines: dict[str, StandIn]) -> dict[str, str]:
    """A gateway's environment with both engines on (SearXNG the default) and the prices above."""
    env = gateway_env(world, mock)
    env.update(
        WEB_SEARCH_SEARXNG_URL=engines["searxng"].url,
        WEB_SEARCH_TAVILY_API_KEY=TAVILY_KEY,
        WEB_SEARCH_TAVILY_URL=engines["tavily"].url,
        WEB_SEARCH_DEFAULT_ENGINE="searxng",
        WEB_SEARCH_TIMEOUT_SECONDS="5",
        WEB_SEARCH_PRICE_NANOS=str(SEARCH_NANOS),
        WEB_SEARCH_RESULT_PRICE_NANOS=str(RESULT_NANOS),
        WEB_SEARCH_INCLUDED_RESULTS=str(INCLUDED),
    )
    return env


def search_price(results: int) -> int:
    return SEARCH_NANOS + max(0, results - INCLUDED) * RESULT_NANOS
