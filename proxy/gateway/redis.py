"""The gateway's shared async Redis client: one connection pool per process."""

from __future__ import annotations

import redis.asyncio as aioredis
from django.conf import settings

_client: aioredis.Redis | None = None


def get_redis() -> aioredis.Redis:
    global _client
    if _client is None:
        # A blocking pool waits for a free connection under bursts instead of failing the request.
        pool = aioredis.BlockingConnectionPool.from_url(settings.REDIS_URL, max_connections=512, timeout=5)
        _client = aioredis.Redis(connection_pool=pool)
    return _client


async def close_redis() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None
