"""Sticky routing: a conversation's next request goes to the endpoint that answered its last one.

Providers cache prompt prefixes per endpoint (Anthropic explicitly, OpenAI, DeepSeek, Gemini and
others implicitly); load balancing among equal providers would send every turn somewhere new and
pay a cache write each time instead of a cache read. Scope (docs/openrouter-api.md 2.9): the API
key + the requested model + the conversation, which is the request's `session_id` (body, else the
`x-session-id` header, else `prompt_cache_key`), or else a hash of the first system/developer
message and the first other message.

- An explicit `provider.order` or `sort` (or a variant that implies a sort: `:nitro`, `:floor`,
  `:exacto`) wins: the request said how to order, so no pin is applied.
- A pin only reorders the plan's own attempts, so it can never reach an endpoint the request may
  not use (filters, policies, open circuits are already out) and never jumps ahead of BYOK
  endpoints or the primary model.
- A success pins (and refreshes) the endpoint that answered; a failure of the pinned endpoint
  unpins it, so an erroring provider is not kept.

The table is in process, not in Redis: a request must not pay a round trip for it, and a miss
(another worker, a restart, an evicted entry) only costs one cache write upstream before the
conversation pins again. Bounded (LRU) and with an idle TTL, so memory stays flat.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from django.conf import settings

from proxy.routing.types import Attempt

_SORTING_VARIANTS = frozenset({"nitro", "floor", "exacto"})
_HASHED_CHARS = 4096


class StickyTable:
    """Conversation key -> endpoint id, least recently used first out, entries expiring after `ttl_s` idle."""

    def __init__(self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._max = max(max_entries, 1)
        self._ttl = ttl_s
        self._clock = clock
        # Sync gateway paths (tests, the embeddings thread pool) may share it with the event loop.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> int | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            endpoint_id, expires = entry
            if expires <= self._clock():
                del self._entries[key]
                return None
            return endpoint_id

    def pin(self, key: str, endpoint_id: int) -> None:
        with self._lock:
            self._entries[key] = (endpoint_id, self._clock() + self._ttl)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def unpin(self, key: str, endpoint_id: int) -> None:
        """Forget the pin if it still points at `endpoint_id` (a failed sticky endpoint is not kept)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == endpoint_id:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def sticky_applies(provider: object, models: Sequence[str], route: str | None) -> bool:
    """False when the request orders its providers itself (`order`, `sort`, a sorting variant)."""
    if isinstance(provider, Mapping) and (provider.get("order") or provider.get("sort")):
        return False
    if route == "sort":
        return False
    return not any(m.rpartition(":")[2] in _SORTING_VARIANTS for m in models if ":" in m)


def conversation_key(key_id: object, model: str, session_id: str, messages: Sequence[Mapping[str, Any]]) -> str:
    """The table key: API key, requested model, and the conversation (session id or leading messages)."""
    if session_id:
        conversation = "s:" + session_id
    else:
        system = next((m for m in messages if m.get("role") in ("system", "developer")), None)
        first = next((m for m in messages if m.get("role") not in ("system", "developer")), None)
        leading = [{"role": m.get("role"), "content": _bounded(m.get("content"))} for m in (system, first) if m]
        # Long strings (a whole PDF or image as base64) are hashed by a bounded prefix and their
        # length, so the event loop never serializes megabytes; two conversations that collide only
        # share a pin, which costs at most a cache miss.
        digest = hashlib.sha256(orjson.dumps(leading, option=orjson.OPT_SORT_KEYS)).hexdigest()
        conversation = "h:" + digest
    return f"{key_id}|{model}|{conversation}"


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= _HASHED_CHARS else f"{value[:_HASHED_CHARS]}...{len(value)}"
    if isinstance(value, list):
        return [_bounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _bounded(v) for k, v in value.items()}
    return value


def sticky_first(attempts: tuple[Attempt, ...], endpoint_id: int | None) -> tuple[Attempt, ...]:
    """The attempts with the pinned endpoint first, when it is in the plan and may go first."""
    if endpoint_id is None or not attempts or attempts[0].candidate.endpoint_id == endpoint_id:
        return attempts
    lead = attempts[0]
    for index, attempt in enumerate(attempts):
        if attempt.candidate.endpoint_id != endpoint_id:
            continue
        # Never ahead of the organization's own keys, nor of the primary model (fallback order holds).
        if attempt.model_slug != lead.model_slug or (lead.candidate.is_byok and not attempt.candidate.is_byok):
            return attempts
        return (attempt, *attempts[:index], *attempts[index + 1 :])
    return attempts


_table: StickyTable | None = None


def sticky_table() -> StickyTable:
    """The process's table, sized from settings on first use."""
    global _table
    if _table is None:
        _table = StickyTable(settings.STICKY_ROUTING_MAX_ENTRIES, settings.STICKY_ROUTING_TTL_SECONDS)
    return _table
