"""The one Redis seam: every module that talks to Redis gets its client here.

Two clients per process, both for `settings.REDIS_URL`:
- `sync_redis()` for workers, views and management commands (one pool per process);
- `async_redis()` for the gateway, one blocking pool per event loop (asyncio connections cannot
  cross loops; tests run several). The pool blocks for a free connection instead of failing: under a
  burst, redis-py's default pool raises "Too many connections" at 100, which turned into 500s in the
  benchmark at 64 clients with three separate pools.

Scripts are registered through `script()` / `async_script()` so a Lua source is hashed once per client.
"""

from __future__ import annotations

import asyncio
import functools
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings
from redis.commands.core import AsyncScript, Script

MAX_CONNECTIONS = 512
WAIT_SECONDS = 5

RedisError = redis.RedisError
ResponseError = redis.ResponseError
Redis = redis.Redis
AsyncRedis = aioredis.Redis

_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = weakref.WeakKeyDictionary()


def configured() -> bool:
    """False in the embedded default (`make run` without REDIS_URL): callers use in-process state."""
    return bool(settings.REDIS_URL)


@functools.cache
def _sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def sync_redis(url: str | None = None) -> redis.Redis:
    """The process's blocking client (for REDIS_URL unless a URL is given, as benchmarks do)."""
    return _sync_client(url or settings.REDIS_URL)


def async_redis(url: str | None = None) -> aioredis.Redis:
    """The shared async client on the running event loop."""
    url = url or settings.REDIS_URL
    per_loop = _async.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS)
        client = per_loop[url] = aioredis.Redis(connection_pool=pool)
    return client


async def close_async_redis() -> None:
    """Close this loop's clients (ASGI lifespan shutdown)."""
    for client in _async.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


def ping(timeout_s: float = 2.0) -> None:
    """Raise RedisError when Redis does not answer within the timeout (readiness probe)."""
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout_s).ping()


def script(source: str, client: redis.Redis | None = None) -> Script:
    return (client or sync_redis()).register_script(source)


def async_script(source: str, client: aioredis.Redis | None = None) -> AsyncScript:
    return (client or async_redis()).register_script(source)
