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
The gateway's two per-request scripts (the credit gate's admit and finish) go through `hot_script()`
instead: one pipelined connection per event loop (`HotConnection`), because redis-py's per-command path (pool
checkout with its condition, lock and observability hooks, a socket probe, a Task for every write
under `asyncio.wait_for`, argument encoding) cost more CPU than everything else Redis did for a
request (benchmarks/gateway.py --profile).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import weakref
from collections.abc import Sequence
from typing import Any, cast

import hiredis
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
NoScriptError = redis.exceptions.NoScriptError
Redis = redis.Redis
AsyncRedis = aioredis.Redis

_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]] = weakref.WeakKeyDictionary()
_muxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, HotConnection]] = weakref.WeakKeyDictionary()


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
    loop = asyncio.get_running_loop()
    for client in _async.pop(loop, {}).values():
        await client.aclose()
    for mux in _muxes.pop(loop, {}).values():
        mux.close()


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


# --- the hot path: one pipelined connection per event loop ----------------------------------------


def hot_script(source: str, url: str | None = None) -> Any:
    """An awaitable `(keys=[...], args=[...])` running `source` by EVALSHA on this loop's pipelined
    connection (loading it on NOSCRIPT, and run again once if the connection drops: only for scripts
    that are idempotent). On a cluster or over TLS, redis-py's script instead."""
    connection = hot_connection(url)
    if connection is None:
        return async_script(source, async_redis(url))
    return _MuxScript(connection, source)


def hot_connection(url: str | None = None) -> HotConnection | None:
    """This loop's pipelined connection to a single Redis server; None on a cluster or over TLS,
    where callers use redis-py's clients."""
    url = url or settings.REDIS_URL
    per_loop = _muxes.setdefault(asyncio.get_running_loop(), {})
    connection = per_loop.get(url)
    if connection is None:
        params = aioredis.connection.parse_url(url)
        if cluster() or ("connection_class" in params and "path" not in params):
            return None
        connection = per_loop[url] = HotConnection(dict(params))
    return connection


def _pack(args: tuple[Any, ...]) -> bytes:
    """RESP for one command (what redis-py's Encoder accepts: bytes, str, int, float).

    hiredis packs in C at half the cost of the loop below (4.6 us for an admit's 26 arguments):
    the loop is only for what it refuses, subclasses such as IntEnum, and the error for the rest."""
    try:
        return cast(bytes, hiredis.pack_command(args))
    except TypeError:
        return _pack_each(args)


def _pack_each(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)  # exact types first: this runs ~25 times per admit and finish
        if kind is bytes:
            pass
        elif kind is str:
            arg = arg.encode()
        elif kind is int:
            arg = b"%d" % arg
        elif isinstance(arg, bool) or not isinstance(arg, bytes | str | int | float):
            raise redis.DataError(f"invalid Redis argument {arg!r}")
        elif isinstance(arg, str):
            arg = str(arg).encode()
        elif isinstance(arg, int):  # an IntEnum's repr is not its number
            arg = b"%d" % arg
        else:
            arg = bytes(arg) if isinstance(arg, bytes) else repr(arg).encode()
        out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


class _Protocol(asyncio.Protocol):
    """Replies come back in the order commands were written, so one FIFO of futures matches them.
    Commands written in one loop iteration leave in one write (one read on the Redis side)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self.reader = hiredis.Reader(replyError=redis.ResponseError)
        self.waiters: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.pending: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter, _ = self.waiters.popleft()
            if waiter.done():  # its caller was cancelled or timed out
                continue
            if isinstance(reply, redis.ResponseError):
                text = str(reply)
                waiter.set_exception(redis.exceptions.NoScriptError(text) if text.startswith("NOSCRIPT") else reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(redis.ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def fail(self, error: redis.RedisError) -> None:
        self.closed = True
        if self.watchdog is not None:
            self.watchdog.cancel()
        while self.waiters:
            waiter, _ = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        if self.closed:
            raise redis.ConnectionError("Redis connection closed")
        waiter = self.loop.create_future()
        self.waiters.append((waiter, self.loop.time() + self.timeout_s))
        if not self.pending:
            self.loop.call_soon(self._flush)
        self.pending.append(packed)
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(self.timeout_s, self._check)
        return waiter

    def _flush(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.pending))
        self.pending.clear()

    def _check(self) -> None:
        """A reply overdue past the timeout means the connection is stuck: drop it and everything on it."""
        self.watchdog = None
        if not self.waiters:
            return
        if self.waiters[0][1] <= self.loop.time():
            self.fail(redis.TimeoutError(f"no reply from Redis within {self.timeout_s}s"))
            if self.transport is not None:
                self.transport.abort()
            return
        self.watchdog = self.loop.call_later(self.timeout_s / 4, self._check)


class HotConnection:
    """Connects on first use and again after a loss; callers share the connection."""

    def __init__(self, params: dict[str, Any], timeout_s: float = WAIT_SECONDS) -> None:
        self.params = params
        self.timeout_s = timeout_s
        self.proto: _Protocol | None = None
        self.connecting: asyncio.Future[_Protocol] | None = None

    async def execute(self, *args: Any) -> Any:
        proto = self.proto
        if proto is None or proto.closed:
            proto = await self._connection()
        return await proto.send(_pack(args))

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Several commands in one write, in order; each slot holds its reply or its ResponseError
        (a NOSCRIPT among them is retried by the caller alone, as the others did run). A lost
        connection raises."""
        proto = self.proto
        if proto is None or proto.closed:
            proto = await self._connection()
        waiters = [proto.send(_pack(tuple(command))) for command in commands]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, redis.ResponseError):
                raise result
        return results

    async def _connection(self) -> _Protocol:
        if self.connecting is None:
            self.connecting = asyncio.ensure_future(self._connect())
        connecting = self.connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self.connecting is connecting:
                self.connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        p = self.params
        proto: _Protocol | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                if "path" in p:
                    _, proto = await loop.create_unix_connection(lambda: _Protocol(loop, self.timeout_s), p["path"])
                else:
                    factory = lambda: _Protocol(loop, self.timeout_s)  # noqa: E731
                    _, proto = await loop.create_connection(factory, p.get("host", "localhost"), p.get("port", 6379))
                hello = []
                if p.get("password"):
                    auth = (p["username"], p["password"]) if p.get("username") else (p["password"],)
                    hello.append(proto.send(_pack(("AUTH", *auth))))
                if p.get("db"):
                    hello.append(proto.send(_pack(("SELECT", p["db"]))))
                await asyncio.gather(*hello)
        except BaseException as exc:
            if proto is not None and proto.transport is not None:
                proto.transport.close()  # refused AUTH or SELECT, or cancelled: no half-open connection left
            if isinstance(exc, TimeoutError):
                raise redis.TimeoutError(f"connecting to Redis took over {self.timeout_s}s") from exc
            if isinstance(exc, OSError):
                raise redis.ConnectionError(f"connecting to Redis: {exc}") from exc
            raise
        self.proto = proto
        return proto

    def close(self) -> None:
        if self.proto is not None and self.proto.transport is not None:
            self.proto.transport.close()
        self.proto = None


class _MuxScript:
    def __init__(self, mux: HotConnection, source: str) -> None:
        self.mux = mux
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: Any = (), args: Any = ()) -> Any:
        try:
            return await self._run(keys, args)
        except redis.ConnectionError:
            # The connection was lost under the call (a Redis restart, a killed client): once more on
            # a new one. hot_script's callers are idempotent per id, so a run that did land is not
            # counted twice (the gate's admit and finish both check their reservation id first).
            return await self._run(keys, args)

    async def _run(self, keys: Any, args: Any) -> Any:
        try:
            return await self.mux.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # a restarted or flushed server: load once, then run
            await self.mux.execute("SCRIPT", "LOAD", self.source)
            return await self.mux.execute("EVALSHA", self.sha, len(keys), *keys, *args)
