"""The one interface every search engine implements: pure translation, like the provider adapters.

An engine turns a query into an `HttpCall` and the engine's answer into `Result`s; the I/O (the
shared transport, the timeout, what a failure means) is `search.py`'s, once for all engines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson

from proxy.providers.base import HttpCall

# What one result may bring into the prompt. Clipping here bounds the injected text, so admission
# can hold credit for the longest prompt the search could produce before the search runs.
MAX_TITLE_CHARS = 300
MAX_URL_CHARS = 2_000
MAX_CONTENT_CHARS = 1_500


class EngineError(Exception):
    """The engine could not answer (unreachable, timed out, an error status, an unreadable body)."""


@dataclass(frozen=True, slots=True)
class Result:
    url: str
    title: str
    content: str

    @classmethod
    def clipped(cls, url: object, title: object, content: object) -> Result | None:
        """A result as the prompt may carry it, or None when it has no usable http(s) URL."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > MAX_URL_CHARS:
            return None
        title_text = title.strip() if isinstance(title, str) else ""
        content_text = content.strip() if isinstance(content, str) else ""
        return cls(url=url, title=title_text[:MAX_TITLE_CHARS] or url, content=content_text[:MAX_CONTENT_CHARS])


class Engine(Protocol):
    name: str

    def request(self, query: str, max_results: int) -> HttpCall: ...

    def parse(self, status: int, body: bytes, max_results: int) -> list[Result]:
        """The results, at most `max_results`; raises EngineError for an error status or bad body."""
        ...


def parse_results(engine: str, status: int, body: bytes, max_results: int, *, not_json: str = "") -> list[Result]:
    """The answer shape both engines share, `{"results": [{"url", "title", "content"}, ...]}`: the first
    `max_results` usable rows, each URL once."""
    if status != 200:
        raise EngineError(f"{engine} answered {status}")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EngineError(f"{engine} did not answer JSON{not_json}") from exc
    rows = data.get("results") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise EngineError(f"{engine}'s answer has no results list")
    results: list[Result] = []
    for row in rows:
        result = Result.clipped(row.get("url"), row.get("title"), row.get("content")) if isinstance(row, dict) else None
        if result is not None and all(r.url != result.url for r in results):
            results.append(result)
        if len(results) == max_results:
            break
    return results
