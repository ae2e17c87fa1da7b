"""Middle-out context compression (contract 2.4; `transforms: ["middle-out"]` / plugin
`context-compression`).

LLMs attend least to the middle of a long context, so that is what we drop. The algorithm:

1. If the conversation has more messages than the endpoint accepts (`max_messages`, e.g. 1000 for
   Anthropic), keep half of that many from the start and half from the end.
2. While the estimate exceeds `max_prompt_tokens`, drop the message group nearest the middle. The
   leading system/developer messages and the final message are never dropped, and an assistant
   message that made tool calls is dropped together with its tool results (providers reject a tool
   result whose call is missing).
3. If only protected messages are left and it still does not fit, cut the middle out of the longest
   text, leaving its head and tail around a marker.

The input list is not modified; a new list (sharing untouched message dicts) is returned.
"""

from __future__ import annotations

from typing import Any

from proxy.tokens import content_tokens, estimate_message_tokens, estimate_prompt_tokens

TRUNCATION_MARKER = "\n\n[...]\n\n"
_SYSTEM_ROLES = frozenset({"system", "developer"})


def _groups(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Messages grouped so that tool results travel with the assistant turn that called them."""
    groups: list[list[dict[str, Any]]] = []
    for message in messages:
        if message.get("role") == "tool" and groups and _calls_tools(groups[-1][0]):
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def _calls_tools(message: dict[str, Any]) -> bool:
    return message.get("role") == "assistant" and bool(message.get("tool_calls"))


def _limit_count(messages: list[dict[str, Any]], max_messages: int) -> list[dict[str, Any]]:
    if max_messages <= 0 or len(messages) <= max_messages:
        return messages
    head = -(-max_messages // 2)
    tail = max_messages - head
    kept = messages[:head] + (messages[-tail:] if tail else [])
    return _drop_orphans(kept)


def _drop_orphans(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Providers reject tool results without their call and calls without their results."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "tool" and not (out and (out[-1].get("role") == "tool" or _calls_tools(out[-1]))):
            continue
        if out and _calls_tools(out[-1]) and message.get("role") != "tool":
            out.pop()
        out.append(message)
    return out


def _truncate_text(text: str, keep_tokens: int) -> str:
    keep_chars = max(keep_tokens, 0) * 4  # the estimator's 4 bytes a token, applied to characters
    if keep_chars >= len(text):
        return text
    half = keep_chars // 2
    return text[:half] + TRUNCATION_MARKER + text[len(text) - half :] if half else TRUNCATION_MARKER.strip()


def _truncate_longest(messages: list[dict[str, Any]], excess: int) -> list[dict[str, Any]]:
    """Cut `excess` tokens from the middle of the longest string content, if there is one."""
    best = -1
    best_tokens = 0
    for index, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, str) and content_tokens(content) > best_tokens:
            best, best_tokens = index, content_tokens(content)
    if best < 0:
        return messages
    keep = best_tokens - excess - estimate_prompt_tokens([{"content": TRUNCATION_MARKER}]) - 1
    trimmed = dict(messages[best])
    trimmed["content"] = _truncate_text(str(trimmed["content"]), keep)
    return [*messages[:best], trimmed, *messages[best + 1 :]]


def middle_out(
    messages: list[dict[str, Any]], *, max_prompt_tokens: int, max_messages: int | None = None
) -> list[dict[str, Any]]:
    """Trim the middle of `messages` until the estimate fits `max_prompt_tokens` (see module doc)."""
    out = _limit_count(list(messages), max_messages or 0)
    total = estimate_prompt_tokens(out)
    if total <= max_prompt_tokens:
        return out
    groups = _groups(out)
    lead = 0
    while lead < len(groups) and groups[lead][0].get("role") in _SYSTEM_ROLES:
        lead += 1
    # Protected: the leading system prompt(s) and the last group (the message being answered).
    while total > max_prompt_tokens and len(groups) - lead > 1:
        middle_candidates = range(lead, len(groups) - 1)
        if not middle_candidates:
            break
        center = (lead + len(groups) - 1) / 2
        victim = min(middle_candidates, key=lambda i: (abs(i - center), i))
        total -= sum(estimate_message_tokens(m) for m in groups[victim])
        del groups[victim]
    out = [m for group in groups for m in group]
    if total > max_prompt_tokens:
        out = _truncate_longest(out, total - max_prompt_tokens)
    return out
