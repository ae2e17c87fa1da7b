"""Tavily, hosted: `POST {base}/search` with a Bearer key, JSON body {query, max_results, ...};
the answer's `results[]` carry `url`, `title`, `content` (and a relevance `score` we do not need)."""

from __future__ import annotations

import orjson

from proxy.plugins.web.engine import Result, parse_results
from proxy.providers.base import HttpCall

# Tavily's own upper bound on max_results.
MAX_RESULTS = 20


class Tavily:
    name = "tavily"

    def __init__(self, base_url: str, api_key: str) -> None:
        self._url = base_url.rstrip("/") + "/search"
        self._api_key = api_key

    def request(self, query: str, max_results: int) -> HttpCall:
        body = {
            "query": query,
            "max_results": min(max_results, MAX_RESULTS),
            "search_depth": "basic",  # "advanced" costs two Tavily credits
            "include_answer": False,
            "include_raw_content": False,
            "include_images": False,
        }
        return HttpCall(
            url=self._url,
            headers={"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"},
            body=orjson.dumps(body),
        )

    def parse(self, status: int, body: bytes, max_results: int) -> list[Result]:
        return parse_results("Tavily", status, body, max_results)
