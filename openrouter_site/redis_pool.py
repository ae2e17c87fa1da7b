"""One async Redis connection pool per process (and per event loop), shared by the gateway,
the credit gate and the health store.

The pool blocks for a free connection instead of failing: under a burst, redis-py's default pool
raises "Too many connections" at 100, which turned into 500s in the benchmark at 64 clients
with three separate pools.
"""

from __future__ import annotations

import asyncio
import weakref

import redis.asyncio as aioredis

MAX_CONNECTIONS = 512
WAIT_SECONDS = 5

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = weakref.WeakKeyDictionary()


def async_redis(url: str) -> aioredis.Redis:
    """The shared client for `url` on the running event loop (asyncio connections cannot cross loops)."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(url)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS)
        client = per_loop[url] = aioredis.Redis(connection_pool=pool)
    return client


async def close_async_redis() -> None:
    loop = asyncio.get_running_loop()
    for client in _clients.pop(loop, {}).values():
        await client.aclose()
