"""How results reach the model and come back to the client, as OpenRouter does it.

The results go in a system message just before the last user message, under a prompt that asks for
markdown-link citations; the answer carries them as `url_citation` annotations, whose start/end
indexes point at the link in the answer when the model cited the page, else 0/0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from proxy.plugins.web.engine import MAX_CONTENT_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS, Result
from proxy.tokens import MESSAGE_BOUND_TOKENS

# The engine sees at most this much of the user's message.
MAX_QUERY_CHARS = 400
# Bytes of one formatted result beside its three fields ("[12] ", "\nURL: ", newlines).
_RESULT_FRAMING = 32


def default_prompt(now: datetime | None = None) -> str:
    day = now or datetime.now(UTC)
    return (
        f"A web search was conducted on {day:%B} {day.day}, {day.year}. Incorporate the following web search "
        "results into your response.\n\nIMPORTANT: Cite them using markdown links named using the domain of "
        "the source.\nExample: [nytimes.com](https://nytimes.com/some-page)."
    )


def search_query(messages: list[dict[str, Any]]) -> str:
    """The last user message's text, which is what the engine searches for ("" when there is none)."""
    for msg in reversed(messages):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        else:
            text = ""
        return " ".join(text.split())[:MAX_QUERY_CHARS]
    return ""


def results_message(results: list[Result], prompt: str) -> dict[str, Any]:
    blocks = [f"[{i}] {r.title}\nURL: {r.url}\n{r.content}" for i, r in enumerate(results, 1)]
    return {"role": "system", "content": prompt + "\n\n" + "\n\n".join(blocks)}


def inject(messages: list[dict[str, Any]], message: dict[str, Any]) -> list[dict[str, Any]]:
    """`messages` with `message` put before the last user message (at the end when there is none)."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return [*messages[:i], message, *messages[i:]]
    return [*messages, message]


def prompt_bound_tokens(max_results: int, search_prompt: str | None) -> int:
    """The most prompt tokens the injected message can add: its UTF-8 bytes bound its tokens
    (proxy/tokens.py), and every field is clipped (engine.py), so this holds before the search runs."""
    prompt = search_prompt if search_prompt is not None else default_prompt()
    per_result = 4 * (MAX_TITLE_CHARS + MAX_URL_CHARS + MAX_CONTENT_CHARS) + _RESULT_FRAMING
    return MESSAGE_BOUND_TOKENS + len(prompt.encode()) + 16 + max_results * per_result


def citations(results: list[Result], text: str) -> list[dict[str, Any]]:
    return [_citation(r, text) for r in results]


def _citation(result: Result, text: str) -> dict[str, Any]:
    start = end = 0
    at = text.find(result.url)
    if at >= 0:
        start, end = at, at + len(result.url)
        # A markdown link `[label](url)`: the whole link is the cited span.
        if at >= 2 and text[at - 2 : at] == "](" and text[end : end + 1] == ")":
            opening = text.rfind("[", 0, at - 2)
            if opening >= 0:
                start, end = opening, end + 1
    return {
        "type": "url_citation",
        "url_citation": {
            "url": result.url,
            "title": result.title,
            "content": result.content,
            "start_index": start,
            "end_index": end,
        },
    }
