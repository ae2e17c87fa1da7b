"""The Redis store, shared by every gateway process, kept off the request path.

- `view()` answers from an in-process snapshot that one background task re-reads every
  `snapshot_ms` (one pipelined round trip for every endpoint this process routes over), so a breaker
  another process opened is seen within one refresh. Redis is asked on the request path only for an
  endpoint not yet in the snapshot, when the snapshot is stale, or to claim the half-open probe once
  a circuit's cool-down is over (the claim must be atomic across processes).
- `record()` of a success on a closed circuit is buffered and written by one background task every
  `flush_ms` (one pipeline of EVALSHA calls). A failure, a 429, and any record for an endpoint this
  process sees open are written at once, behind whatever is buffered, in one pipeline that also
  re-reads the endpoint: the breaker rules see records in order, and this process's next view of
  the endpoint already reflects the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from common.redis import (
    AsyncRedis,
    HotConnection,
    NoScriptError,
    ResponseError,
    async_redis,
    async_script,
    hot_connection,
    script,
    sync_redis,
)
from proxy.health.base import (
    SLOT_MS,
    EndpointHealth,
    HealthConfig,
    HealthStore,
    HealthView,
    stats_dict,
    throughput,
    tool_error_rate,
)
from proxy.health.keys import endpoint, record_keys

logger = logging.getLogger(__name__)

# The scripts live beside this module so they read as Lua (one round trip each).
_LUA_DIR = Path(__file__).with_name("lua")
_RECORD_LUA = (_LUA_DIR / "record.lua").read_text()
_VIEW_LUA = (_LUA_DIR / "view.lua").read_text()

_KEY_TTL_MS = 2 * 86_400_000  # an endpoint nobody calls for two days forgets its history


@functools.cache
def _sha(source: str) -> str:
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


_Record = tuple[list[str], list[Any]]  # record.lua's KEYS and ARGV
_Call = tuple[str, list[str], list[Any]]  # a script's source, KEYS and ARGV


def _opt_float(raw: bytes | str) -> float | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return float(text) if text else None


def _sample(now_ms: int, latency: float | None, ttft: float | None, tps: float | None) -> str:
    if latency is None and ttft is None and tps is None:
        return ""
    return " ".join([str(now_ms), *("-" if v is None else f"{v:.3f}" for v in (latency, ttft, tps))])


class _Script(Protocol):
    """A Lua script registered on an async client (common.redis.async_script)."""

    sha: str

    async def __call__(
        self, keys: Sequence[str] | None = None, args: Sequence[Any] | None = None, client: Any = None
    ) -> Any: ...


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """One endpoint in the snapshot: its health, and until when that holds without asking Redis."""

    health: EndpointHealth
    until_ms: float = 0.0  # open circuit: when the cool-down (or another caller's probe) ends; 0 = closed

    def at(self, now_ms: float) -> EndpointHealth:
        if not self.until_ms:
            return self.health
        return dataclasses.replace(self.health, retry_after_s=max(self.until_ms - now_ms, 0.0) / 1000)


_UNKNOWN = _Entry(EndpointHealth())  # sentinel: never read (distinct from None, read and empty)


class RedisHealthStore(HealthStore):
    """Health in Redis: every process sees the same state (within one snapshot refresh).

    Clients come from common.redis (the process's shared pools); `url` is REDIS_URL unless a test or
    benchmark points the store elsewhere.
    """

    def __init__(
        self,
        url: str | None = None,
        config: HealthConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, clock)
        self.url = url
        self._client: AsyncRedis | None = None
        self._bound: tuple[_Script, _Script] | None = None
        self._loaded: AsyncRedis | None = None  # the client both scripts were loaded through
        self._snapshot: dict[int, _Entry | None] = {}  # None: read, no history
        self._snapshot_ms = float("-inf")  # when the last full refresh read Redis (store clock)
        self._watched: dict[int, float] = {}  # endpoint -> last view (store clock, ms)
        self._touched: dict[int, int] = {}  # endpoint -> local updates, so a refresh in flight never undoes one
        self._pending: deque[_Record] = deque()  # thread-safe appends and pops: stats() drains from views
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Future[list[Any]]] = set()  # background writes close() waits for

    def _scripts(self) -> tuple[_Script, _Script]:
        """The scripts on the running event loop's client: asyncio connections cannot cross loops,
        and tests (or a management command) may run several loops one after another in one process.
        Scripts go by EVALSHA, loading themselves once after a Redis restart."""
        client = async_redis(self.url)
        if self._client is not client or self._bound is None:
            self._client = client
            self._bound = (async_script(_VIEW_LUA, client), async_script(_RECORD_LUA, client))
        return self._bound

    def _now_ms(self) -> int:
        # Client clocks (NTP-synced) rather than Redis TIME, so tests can drive time; skew only
        # shifts the windows by the skew.
        return int(self.clock() * 1000)

    def _view_args(self, now_ms: int, *, claim: bool) -> list[Any]:
        cfg = self.config
        return [
            now_ms,
            cfg.slots,
            SLOT_MS,
            cfg.outage_window_s * 1000 // SLOT_MS,
            cfg.outage_min_errors,
            int(cfg.cb_probe_ttl_s * 1000),
            cfg.tool_window_min,
            cfg.tool_min_calls,
            "1" if claim else "0",
        ]

    # --- background tasks (one pair per event loop) -----------------------------------------------

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        # A new loop (tests run several in turn): the old loop's tasks died with it.
        self._loop, self._wake = loop, asyncio.Event()
        self._tasks = [
            loop.create_task(self._flush_forever(), name="health-flush"),
            loop.create_task(self._refresh_forever(), name="health-snapshot"),
        ]

    async def _flush_forever(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while True:
            await wake.wait()
            wake.clear()
            await asyncio.sleep(self.config.flush_ms / 1000)
            try:
                await self._background_write([])
            except Exception:  # Redis away: drop this batch (health is advisory), keep serving
                logger.warning("health records could not be written", exc_info=True)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_ms / 1000)
            try:
                await self._refresh()
            except Exception:  # the request path reads Redis itself once the snapshot is stale
                logger.warning("health snapshot refresh failed", exc_info=True)

    async def _background_write(self, reads: list[int]) -> list[Any]:
        """A write that drains the buffer, shielded from its caller's cancellation: once a batch has left
        the buffer, only this write holds it, so close() waits for it rather than lose the records."""
        write = asyncio.ensure_future(self._write(reads))
        self._inflight.add(write)
        write.add_done_callback(self._inflight.discard)
        return await asyncio.shield(write)

    def _drain(self) -> list[_Record]:
        out: list[_Record] = []
        with contextlib.suppress(IndexError):
            while True:
                out.append(self._pending.popleft())
        return out

    async def _write(self, reads: list[int], record: _Record | None = None, *, claim: bool = False) -> list[Any]:
        """One round trip: the buffered records, then `record`, then a view of `reads`; returns the views."""
        batch = self._drain()
        if record is not None:
            batch.append(record)
        if not batch and not reads:
            return []
        # One call per endpoint: each touches only its own keys (one hash slot on a cluster).
        view_args = self._view_args(self._now_ms(), claim=claim)
        calls = [(_RECORD_LUA, keys, args) for keys, args in batch]
        calls += [(_VIEW_LUA, [endpoint(eid)], view_args) for eid in reads]
        hot = hot_connection(self.url)
        results = await (self._run_hot(hot, calls) if hot is not None else self._run_pipeline(calls))
        return [rows[0] for rows in results[len(batch) :]]

    @staticmethod
    async def _run_hot(hot: HotConnection, calls: list[_Call]) -> list[Any]:
        """On the gateway's pipelined connection (a redis-py pipeline cost 4-5% of a request's CPU:
        benchmarks/gateway.py --profile). Only the calls that met NOSCRIPT (a restarted or flushed
        Redis) run again: the others did run, and a record must not count twice."""
        commands = [("EVALSHA", _sha(source), len(keys), *keys, *args) for source, keys, args in calls]
        results = await hot.execute_many(commands)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            for source in dict.fromkeys(calls[i][0] for i in missing):
                await hot.execute("SCRIPT", "LOAD", source)
            again = await hot.execute_many([commands[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _run_pipeline(self, calls: list[_Call]) -> list[Any]:
        """Through redis-py (a cluster, or TLS): one pipeline, scripts loaded once per client."""
        view_script, record_script = self._scripts()
        scripts = {_VIEW_LUA: view_script, _RECORD_LUA: record_script}
        client = self._client
        assert client is not None
        direct = isinstance(client, AsyncRedis)  # a single server (cluster pipelines queue EVAL instead)
        if direct and self._loaded is not client:
            for source in (_VIEW_LUA, _RECORD_LUA):  # once per client, so a batch never meets NOSCRIPT halfway
                await client.script_load(source)
            self._loaded = client
        for retry in (False, True):
            pipe = client.pipeline(transaction=False)
            for source, keys, args in calls:
                if direct:
                    # Queued as bare EVALSHA: a pipeline holding scripts would first ask SCRIPT EXISTS,
                    # one more round trip per batch. A NOSCRIPT (Redis restarted) reloads and retries.
                    pipe.evalsha(_sha(source), len(keys), *keys, *args)
                else:
                    await scripts[source](keys=keys, args=args, client=pipe)
            try:
                return list(await pipe.execute())
            except ResponseError as exc:
                if retry or not direct or not isinstance(exc, NoScriptError):
                    raise
                for source in (_VIEW_LUA, _RECORD_LUA):
                    await client.script_load(source)
        raise AssertionError("unreachable")

    async def _refresh(self) -> None:
        now = self._now_ms()
        cutoff = now - self.config.watch_ms
        for eid in [e for e, seen in self._watched.items() if seen < cutoff]:
            del self._watched[eid]
        ids = list(self._watched)
        touched = dict(self._touched)
        rows = await self._background_write(ids)
        snapshot: dict[int, _Entry | None] = {}
        for eid, row in zip(ids, rows, strict=True):
            if self._touched.get(eid) != touched.get(eid):
                snapshot[eid] = self._snapshot.get(eid)  # updated locally while this read was out
            else:
                snapshot[eid] = self._entry(row, now)[1]
        self._snapshot, self._snapshot_ms = snapshot, now

    def _entry(self, row: Sequence[Any], now_ms: int) -> tuple[EndpointHealth | None, _Entry | None]:
        """(what this caller sees, what the snapshot keeps) from one view.lua row."""
        if not row:
            return None, None
        outage, state, retry, lat, ttft, tps, tools = (v.decode() if isinstance(v, bytes) else v for v in row)
        retry_ms = _opt_float(retry)
        health = EndpointHealth(
            recent_outage=outage == "1",
            circuit_open=state in ("open", "cooled"),
            half_open_probe=state == "probe",
            latency_p50_ms=_opt_float(lat),
            ttft_p50_ms=_opt_float(ttft),
            throughput_p50=_opt_float(tps),
            retry_after_s=retry_ms / 1000 if retry_ms is not None else None,
            tool_error_rate=_opt_float(tools),
        )
        if state == "open":
            return health, _Entry(health, now_ms + (retry_ms or 0.0))
        if state == "cooled":  # the next view claims the probe (or learns who has it)
            return health, _Entry(health, float(now_ms))
        if state == "probe":  # this caller holds it; everyone else here skips it while it is out
            ttl = self.config.cb_probe_ttl_s * 1000
            kept = dataclasses.replace(health, circuit_open=True, half_open_probe=False, retry_after_s=ttl / 1000)
            return health, _Entry(kept, now_ms + ttl)
        return health, _Entry(health)

    # --- the interface ------------------------------------------------------------------------------

    async def view(self, endpoint_ids: Iterable[int]) -> HealthView:
        ids = list(dict.fromkeys(endpoint_ids))
        if not ids:
            return HealthView({})
        self._start()
        now = self._now_ms()
        fresh = now - self._snapshot_ms <= self.config.snapshot_stale_ms
        snapshot, watched = self._snapshot, self._watched
        by_endpoint: dict[int, EndpointHealth] = {}
        ask: list[int] = []
        for eid in ids:
            watched[eid] = now
            entry = snapshot.get(eid, _UNKNOWN) if fresh else _UNKNOWN
            if entry is _UNKNOWN or (entry is not None and entry.until_ms and now >= entry.until_ms):
                ask.append(eid)
            elif entry is not None:
                by_endpoint[eid] = entry.at(now)
        if ask:
            for eid, row in zip(ask, await self._write(ask, claim=True), strict=True):
                health, entry = self._entry(row, now)
                self._update(eid, entry)
                if health is not None:
                    by_endpoint[eid] = health
        return HealthView(by_endpoint)

    def _update(self, eid: int, entry: _Entry | None) -> None:
        self._snapshot[eid] = entry
        self._touched[eid] = self._touched.get(eid, 0) + 1

    async def record(
        self,
        endpoint_id: int,
        *,
        ok: bool,
        rate_limited: bool = False,
        latency_ms: float | None = None,
        ttft_ms: float | None = None,
        tokens: int | None = None,
        duration_ms: float | None = None,
        org_id: int | None = None,
        tool_calls_ok: bool | None = None,
    ) -> None:
        cfg = self.config
        now_ms = self._now_ms()
        kind = "rl" if rate_limited else ("ok" if ok else "err")
        sample = _sample(now_ms, latency_ms, ttft_ms, throughput(tokens, duration_ms, ttft_ms)) if ok else ""
        item: _Record = (
            record_keys(endpoint_id),
            [
                now_ms,
                kind,
                sample,
                cfg.slots,
                SLOT_MS,
                cfg.cb_failures,
                cfg.cb_error_rate,
                cfg.cb_min_requests,
                cfg.cb_window_s * 1000 // SLOT_MS,
                int(cfg.cb_cooldown_s * 1000),
                cfg.sample_cap,
                _KEY_TTL_MS,
                cfg.p50_window_s * 1000,
                cfg.p50_refresh_ms,
                "" if org_id is None else org_id,
                cfg.cb_min_orgs,
                "" if tool_calls_ok is None else ("1" if tool_calls_ok else "0"),
                cfg.tool_window_min,
            ],
        )
        self._start()
        entry = self._snapshot.get(endpoint_id)
        if kind == "ok" and (entry is None or not entry.health.circuit_open):
            self._pending.append(item)
            if len(self._pending) == 1 and self._wake is not None:
                self._wake.set()
            return
        # A failure (it may open the breaker) or the probe's answer: written now, and read back.
        (row,) = await self._write([endpoint_id], item)
        self._update(endpoint_id, self._entry(row, now_ms)[1])

    async def flush(self) -> None:
        await self._refresh()

    async def close(self) -> None:
        # The clients are the process's shared ones (common.redis closes them at shutdown): write
        # what is buffered, stop this loop's tasks and forget the scripts bound to the clients.
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        with contextlib.suppress(RuntimeError):
            if self._loop is asyncio.get_running_loop():
                # Cancelled tasks stop at once; a write they had started finishes (it holds drained records).
                await asyncio.gather(*tasks, *self._inflight, return_exceptions=True)
                await self._write([])
        self._inflight.clear()
        self._loop, self._wake = None, None
        self._client = self._bound = self._loaded = None

    def stats(self, endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
        client = sync_redis(self.url)
        pipe = client.pipeline(transaction=False)
        # Buffered successes first, so the page shows every answer this process has served.
        pending = self._drain()
        if pending:
            record_script = script(_RECORD_LUA, client)
            for keys, args in pending:
                record_script(keys=keys, args=args, client=pipe)
        for eid in endpoint_ids:
            key = endpoint(eid)
            pipe.hgetall(f"{key}:mok")
            pipe.hgetall(f"{key}:merr")
            pipe.lrange(f"{key}:s", 0, -1)
            pipe.hgetall(key)
        results = pipe.execute()[len(pending) :]
        now_ms = self._now_ms()
        out: dict[int, dict[str, Any]] = {}
        for n, eid in enumerate(endpoint_ids):
            oks, errs, raw_samples, state = results[4 * n : 4 * n + 4]
            minutes: dict[int, tuple[int, int]] = {}
            for minute in {*oks, *errs}:
                minutes[int(minute)] = (int(oks.get(minute, 0)), int(errs.get(minute, 0)))
            samples = [_parse_sample(s) for s in raw_samples]
            tool_rate = tool_error_rate(_tool_buckets(state), now_ms, self.config)
            out[eid] = stats_dict(minutes, samples, now_ms, tool_rate)
        return out


def _tool_buckets(state: dict[bytes, bytes]) -> dict[int, tuple[int, int]]:
    """The tool-call ring of record.lua (tm<i> minute, tt<i> responses, tb<i> bad) by minute."""
    fields = {k.decode(): v.decode() for k, v in state.items()}
    out: dict[int, tuple[int, int]] = {}
    for name, minute in fields.items():
        if name.startswith("tm"):
            index = name[2:]
            out[int(minute)] = (int(fields.get(f"tt{index}", 0)), int(fields.get(f"tb{index}", 0)))
    return out


def _parse_sample(raw: bytes) -> tuple[float, float | None, float | None, float | None]:
    ts, lat, ttft, tps = raw.decode().split()
    values = [None if v == "-" else float(v) for v in (lat, ttft, tps)]
    return float(ts), values[0], values[1], values[2]
