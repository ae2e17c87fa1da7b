"""The gateway's async Redis client: the process-wide shared pool."""

from __future__ import annotations

import redis.asyncio as aioredis
from django.conf import settings

from openrouter_site.redis_pool import async_redis, close_async_redis


def get_redis() -> aioredis.Redis:
    return async_redis(settings.REDIS_URL)


async def close_redis() -> None:
    await close_async_redis()
