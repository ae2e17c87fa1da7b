"""Running the search for one request: once, after the credit hold, before the first attempt.

An engine that fails fails the request (502 in the API's error envelope) and the caller releases the
hold, so no credit moves: the contract does not say OpenRouter answers without the results it was
asked to use, and an answer that silently ignored the plugin would still be billed for the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from proxy.plugins.web.engine import EngineError, Result
from proxy.plugins.web.inject import citations, default_prompt, inject, results_message, search_query
from proxy.plugins.web.options import WebOptions, WebSearchError, engines
from proxy.transport import Timeouts, TransportError, transport


def search_price_nanos(results: int) -> int:
    """One search, its first results included, then a price per extra result (OpenRouter's Exa pricing)."""
    extra = max(0, results - settings.WEB_SEARCH_INCLUDED_RESULTS)
    return int(settings.WEB_SEARCH_PRICE_NANOS) + extra * int(settings.WEB_SEARCH_RESULT_PRICE_NANOS)


def hold_nanos(options: WebOptions | None) -> int:
    """What the credit hold adds for the search: its price at the most results it may return."""
    return 0 if options is None else search_price_nanos(options.max_results)


@dataclass(slots=True)
class WebSearch:
    """One request's search: what it found, what it costs, and the answer text citations point into."""

    engine: str
    results: list[Result]
    searched: bool  # False when the request had no user text to search for: nothing to charge
    _text: list[str] = field(default_factory=list)

    @property
    def cost_nanos(self) -> int:
        return search_price_nanos(len(self.results)) if self.searched else 0

    def feed(self, choices: list[Any]) -> None:
        """Streamed deltas of the first choice, so the final annotations can point into the answer."""
        for choice in choices:
            if choice.get("index", 0) == 0:
                content = (choice.get("delta") or {}).get("content")
                if isinstance(content, str):
                    self._text.append(content)

    def stream_annotations(self) -> list[dict[str, Any]]:
        return citations(self.results, "".join(self._text))

    def annotate(self, choices: list[dict[str, Any]]) -> None:
        """Put the citations on every answered message (non-streaming)."""
        if not self.results:
            return
        for choice in choices:
            message = choice.get("message")
            if isinstance(message, dict):
                content = message.get("content")
                # Added to, not replacing, what other plugins put there (file-parser's `file` notes).
                found = citations(self.results, content if isinstance(content, str) else "")
                message["annotations"] = [*(message.get("annotations") or ()), *found]


async def web_search_apply(body: dict[str, Any], options: WebOptions) -> WebSearch:
    """Search for the last user message and put the results into `body["messages"]`.

    Raises WebSearchError(502) when the engine fails; the caller releases the credit hold.
    """
    engine = engines()[options.engine]
    query = search_query(body["messages"])
    if not query:
        return WebSearch(engine=engine.name, results=[], searched=False)
    timeout = float(settings.WEB_SEARCH_TIMEOUT_SECONDS)
    timeouts = Timeouts(connect_s=min(timeout, 3.0), first_byte_s=timeout, idle_s=timeout)
    try:
        response = await transport.post(engine.request(query, options.max_results), timeouts)
        results = engine.parse(response.status, await response.read(), options.max_results)
    except (TransportError, EngineError) as exc:
        raise WebSearchError(502, f"Web search failed ({engine.name}): {exc}") from exc
    if results:
        prompt = options.search_prompt if options.search_prompt is not None else default_prompt()
        body["messages"] = inject(body["messages"], results_message(results, prompt))
    return WebSearch(engine=engine.name, results=results, searched=True)
