"""SearXNG, self-hosted: its JSON search API (`format=json` must be enabled in the instance's settings).

SearXNG's /search answers GET and POST alike; the query goes as a form POST because the project's
one shared transport sends POSTs (a GET there would need a second pooled session).
"""

from __future__ import annotations

from urllib.parse import urlencode

from proxy.plugins.web.engine import Result, parse_results
from proxy.providers.base import HttpCall


class SearXNG:
    name = "searxng"

    def __init__(self, base_url: str) -> None:
        self._url = base_url.rstrip("/") + "/search"

    def request(self, query: str, max_results: int) -> HttpCall:
        return HttpCall(
            url=self._url,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            body=urlencode({"q": query, "format": "json"}).encode(),
        )

    def parse(self, status: int, body: bytes, max_results: int) -> list[Result]:
        return parse_results("SearXNG", status, body, max_results, not_json=" (is format=json enabled?)")
