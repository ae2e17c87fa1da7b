"""Telling every process that a cached API key or organization changed.

The gateway keeps keys and organization settings in a per-process cache (proxy/gateway/auth.py) so
no request pays a database read. A change published here reaches every gateway process through Redis
pub/sub within milliseconds; the cache's own TTL remains the backstop for a process that missed the
message (it clears everything when it re-subscribes, so a Redis restart loses nothing either).
Listeners in this process are called directly: the embedded default has no Redis and one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

from django.db import transaction

from common.redis import RedisError, configured, sync_redis

CHANNEL = "cache:invalidate"
Kind = Literal["key", "org"]
Listener = Callable[[str, str], None]

logger = logging.getLogger(__name__)
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    """Call `listener(kind, ident)` for every change published in this process."""
    if listener not in _listeners:
        _listeners.append(listener)


def notify(kind: str, ident: str) -> None:
    """Deliver one change to this process's listeners (the subscriber calls this for remote ones)."""
    for listener in _listeners:
        listener(kind, ident)


def message(kind: Kind, ident: str) -> str:
    return f"{kind}:{ident}"


def parse(raw: bytes | str) -> tuple[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    kind, _, ident = text.partition(":")
    return kind, ident


def publish_on_commit(kind: Kind, ident: str) -> None:
    """After the surrounding transaction commits (so a reload reads the new row), tell everyone."""
    transaction.on_commit(lambda: _publish(kind, ident))


def _publish(kind: Kind, ident: str) -> None:
    notify(kind, ident)
    if not configured():
        return
    try:
        sync_redis().publish(CHANNEL, message(kind, ident))
    except RedisError:
        # The change is committed; gateways see it when their cache entry expires (seconds).
        logger.warning("could not publish a %s change; caches catch up within their TTL", kind, exc_info=True)
