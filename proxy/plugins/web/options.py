"""The web plugin as a request asks for it: `plugins: [{"id": "web", ...}]` or a model id's `:online`.

Validated at parse time, so a bad option or an engine this server does not run is a 400 before any
credit is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from proxy.plugins.web.engine import Engine
from proxy.plugins.web.searxng import SearXNG
from proxy.plugins.web.tavily import Tavily

DEFAULT_MAX_RESULTS = 5
MAX_RESULTS = 20
ONLINE = ":online"
# OpenRouter's engine names we do not run: a client naming one gets our default engine, because
# clients (the AI SDK provider, Cline) send them as defaults, not as a choice of vendor.
FOREIGN_ENGINES = frozenset({"native", "exa", "firecrawl", "parallel", "perplexity"})


class WebSearchError(Exception):
    """The search cannot run: `status` 400 for the request's fault, 502 when the engine failed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class WebOptions:
    engine: str  # an engine this server runs (see `engines()`)
    max_results: int = DEFAULT_MAX_RESULTS
    search_prompt: str | None = None  # replaces the default prompt put before the results


def engines() -> dict[str, Engine]:
    """The engines enabled by settings, by name."""
    found: dict[str, Engine] = {}
    if settings.WEB_SEARCH_SEARXNG_URL:
        found["searxng"] = SearXNG(settings.WEB_SEARCH_SEARXNG_URL)
    if settings.WEB_SEARCH_TAVILY_API_KEY:
        found["tavily"] = Tavily(settings.WEB_SEARCH_TAVILY_URL, settings.WEB_SEARCH_TAVILY_API_KEY)
    return found


def _default_engine(available: dict[str, Engine]) -> str:
    if settings.WEB_SEARCH_DEFAULT_ENGINE:
        return str(settings.WEB_SEARCH_DEFAULT_ENGINE)
    for name in ("tavily", "searxng"):
        if name in available:
            return name
    raise WebSearchError(400, "Web search is not available: no search engine is configured on this server")


def web_options(plugins: Any, models: list[str]) -> tuple[WebOptions | None, list[str]]:
    """(the web plugin's options or None, the model ids without `:online`)."""
    online = any(m.endswith(ONLINE) for m in models)
    stripped = [m[: -len(ONLINE)] if m.endswith(ONLINE) else m for m in models]
    plugin: dict[str, Any] | None = None
    for entry in plugins or ():
        if isinstance(entry, dict) and entry.get("id") == "web":
            plugin = entry
    if plugin is not None and plugin.get("enabled", True) is False:
        return None, stripped
    if plugin is None and not online:
        return None, stripped
    return _parse(plugin or {}), stripped


def _parse(plugin: dict[str, Any]) -> WebOptions:
    max_results = plugin.get("max_results", DEFAULT_MAX_RESULTS)
    if max_results is None:
        max_results = DEFAULT_MAX_RESULTS
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
        raise WebSearchError(400, f"plugins[web].max_results must be an integer between 1 and {MAX_RESULTS}")
    prompt = plugin.get("search_prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise WebSearchError(400, "plugins[web].search_prompt must be a string")
    available = engines()
    engine = plugin.get("engine")
    if engine is not None and not isinstance(engine, str):
        raise WebSearchError(400, "plugins[web].engine must be a string")
    if engine is None or engine in FOREIGN_ENGINES:
        engine = _default_engine(available)
    if engine not in available:
        names = ", ".join(sorted(available)) or "none"
        raise WebSearchError(400, f"plugins[web].engine {engine!r} is not available here (available: {names})")
    return WebOptions(engine=engine, max_results=max_results, search_prompt=prompt or None)
