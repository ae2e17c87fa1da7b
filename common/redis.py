"""The one Redis seam: every module that talks to Redis gets its client here.

Two clients per process, both for `settings.REDIS_URL`:
- `sync_redis()` for workers, views and management commands (one pool per process);
- `async_redis()` for the gateway, one blocking pool per event loop (asyncio connections cannot
  cross loops; tests run several). The pool blocks for a free connection instead of failing: under a
  burst, redis-py's default pool raises "Too many connections" at 100, which turned into 500s in the
  benchmark at 64 clients with three separate pools.

With REDIS_CLUSTER the same functions return redis-py's cluster clients (`RedisCluster`), seeded
from the node REDIS_URL names: they route each command, script and single-slot pipeline to the node
that owns its keys. Callers are typed against `Redis` / `AsyncRedis`: the cluster clients speak the
same command API, and every multi-key script and MULTI in this project touches one hash slot
(billing/gate/keys.py, proxy/health/keys.py explain the tags).

Scripts are registered through `script()` / `async_script()` so a Lua source is hashed once per client.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from typing import Any, cast

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
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


def cluster() -> bool:
    """True when REDIS_URL is a node of a Redis Cluster (settings.REDIS_CLUSTER)."""
    return bool(settings.REDIS_CLUSTER)


@functools.cache
def _sync_client(url: str, is_cluster: bool) -> redis.Redis:
    if is_cluster:
        return cast(redis.Redis, redis.cluster.RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS))
    return redis.Redis.from_url(url)


def sync_redis(url: str | None = None) -> redis.Redis:
    """The process's blocking client (for REDIS_URL unless a URL is given, as benchmarks do)."""
    return _sync_client(url or settings.REDIS_URL, cluster())


def async_redis(url: str | None = None) -> aioredis.Redis:
    """The shared async client on the running event loop."""
    url = url or settings.REDIS_URL
    per_loop = _async.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(url)
    if client is None:
        if cluster():
            # Per node; the cluster client has no blocking pool, so size it past the burst instead.
            found = aiocluster.RedisCluster.from_url(url, max_connections=MAX_CONNECTIONS)
            client = per_loop[url] = cast(aioredis.Redis, found)
        else:
            pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS)
            client = per_loop[url] = aioredis.Redis(connection_pool=pool)
    return client


async def async_pubsub(url: str | None = None) -> aioredis.client.PubSub:
    """A subscriber on this loop's client. Plain SUBSCRIBE: on a cluster, PUBLISH on any node reaches
    every node's subscribers, so one node's connection hears the whole cluster."""
    client = async_redis(url)
    if isinstance(client, aiocluster.RedisCluster):
        await client.initialize()  # its pubsub picks the channel's node from the slot map, empty until then
    return client.pubsub(ignore_subscribe_messages=True)


async def close_async_redis() -> None:
    """Close this loop's clients (ASGI lifespan shutdown)."""
    for client in _async.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


def ping(timeout_s: float = 2.0) -> None:
    """Raise RedisError when Redis does not answer within the timeout (readiness probe)."""
    if cluster():
        probe = redis.cluster.RedisCluster.from_url(settings.REDIS_URL, socket_timeout=timeout_s)
        try:
            probe.ping()
        finally:
            probe.close()
        return
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout_s).ping()


def script(source: str, client: redis.Redis | None = None) -> Script:
    client = client or sync_redis()
    if isinstance(client, redis.cluster.RedisCluster):
        return _ClusterSyncScript(client, source)
    return client.register_script(source)


class _ClusterSyncScript(Script):
    """As `_ClusterScript`, for the blocking cluster client's pipelines."""

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if isinstance(client, redis.cluster.ClusterPipeline):
            keys, args = list(keys or []), list(args or [])
            return cast(Any, client).execute_command("EVAL", self.script, len(keys), *keys, *args)
        return super().__call__(keys, args, client)


def async_script(source: str, client: aioredis.Redis | None = None) -> AsyncScript:
    client = client or async_redis()
    if isinstance(client, aiocluster.RedisCluster):
        return _ClusterScript(client, source)
    return client.register_script(source)


class _ClusterScript(AsyncScript):
    """A script queued on a cluster pipeline goes as EVAL with its source: redis-py queues EVALSHA
    there without loading the script first, and a node that has not seen it (a new or restarted
    node) would fail the whole batch with NOSCRIPT. Direct calls keep EVALSHA (they reload on NOSCRIPT).
    """

    async def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if isinstance(client, aiocluster.ClusterPipeline):
            keys, args = list(keys or []), list(args or [])
            # Queued, not awaited: awaiting a cluster pipeline re-initializes it and empties its stack.
            return client.execute_command("EVAL", self.script, len(keys), *keys, *args)
        return await super().__call__(keys, args, client)
