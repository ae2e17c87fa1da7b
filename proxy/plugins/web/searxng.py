"""SearXNG, self-hosted: its JSON search API (`format=json` must be enabled in the instance's settings).

SearXNG's /search answers GET and POST alike; the query goes as a form POST because the project's
one shared transport sends POSTs (a GET there would need a second pooled session).
"""

from __future__ import annotations

from urllib.parse import urlencode

import orjson

from proxy.plugins.web.engine import EngineError, Result
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
        if status != 200:
            raise EngineError(f"SearXNG answered {status}")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise EngineError("SearXNG did not answer JSON (is format=json enabled?)") from exc
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise EngineError("SearXNG's answer has no results list")
        results: list[Result] = []
        for row in rows:
            result = (
                Result.clipped(row.get("url"), row.get("title"), row.get("content")) if isinstance(row, dict) else None
            )
            if result is not None and all(r.url != result.url for r in results):
                results.append(result)
            if len(results) == max_results:
                break
        return results
