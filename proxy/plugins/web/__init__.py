"""The web search plugin (`plugins: [{"id": "web"}]` and `:online`): engines behind one interface
(engine.py; searxng.py, tavily.py), results injected into the prompt and returned as `url_citation`
annotations (inject.py), priced per search through the request's credit hold (search.py)."""

from proxy.plugins.web.inject import prompt_bound_tokens
from proxy.plugins.web.options import WebOptions, WebSearchError, web_options
from proxy.plugins.web.search import WebSearch, hold_nanos, search_price_nanos, web_search_apply

__all__ = [
    "WebOptions",
    "WebSearch",
    "WebSearchError",
    "hold_nanos",
    "prompt_bound_tokens",
    "search_price_nanos",
    "web_options",
    "web_search_apply",
]
