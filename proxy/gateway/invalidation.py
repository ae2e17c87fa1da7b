"""The gateway's side of common/invalidation: a task per process that drops cached keys and
organizations as soon as another process says they changed."""

from __future__ import annotations

import asyncio
import logging

from common.invalidation import CHANNEL, notify, parse
from common.redis import RedisError, async_pubsub, configured
from proxy.gateway.auth import caches_clear

logger = logging.getLogger(__name__)
RETRY_SECONDS = 1.0


async def subscribe_forever() -> None:
    """Runs for the life of the process (started at lifespan startup, cancelled at shutdown)."""
    if not configured():
        return
    while True:
        try:
            pubsub = await async_pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                # Whatever changed while we were not listening is unknown: start from nothing.
                caches_clear()
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        notify(*parse(msg["data"]))
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError):
            logger.warning("cache invalidation subscriber lost Redis; retrying", exc_info=True)
            await asyncio.sleep(RETRY_SECONDS)
