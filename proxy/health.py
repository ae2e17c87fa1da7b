"""Endpoint health: rolling error counts, latency, throughput and a circuit breaker, shared by every
gateway process through Redis (an in-process store when REDIS_URL is empty).

Routing reads a `HealthView` (one Redis round trip per request); the gateway calls `record()` after
each attempt (one round trip). The rules, all configurable (see docs/routing.md):

* outage: at least HEALTH_OUTAGE_MIN_ERRORS failures (5xx, timeouts, invalid responses, and 429s)
  in the last 30 s, and no fewer failures than successes. Routing deprioritizes, never excludes.
* circuit breaker: opens after HEALTH_CB_FAILURES consecutive failures, or when the error rate over
  the last HEALTH_CB_WINDOW_S seconds reaches HEALTH_CB_ERROR_RATE with at least
  HEALTH_CB_MIN_REQUESTS requests. 429s never open it (a busy provider is not a broken one).
  While open, routing skips the endpoint. After HEALTH_CB_COOLDOWN_S one caller of `view()` is
  granted the half-open probe (exclusively, for HEALTH_CB_PROBE_TTL_S); the probe's success closes
  the circuit, its failure reopens it for another cool-down.
* uptime: success / (success + errors) per 5 min, 30 min and 1 day; 429s count as neither
  (contract 10.5).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings

from common.redis import AsyncRedis, async_redis, async_script, configured, sync_redis


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    recent_outage: bool = False
    circuit_open: bool = False  # skip it: open and cooling down, or another caller holds the probe
    half_open_probe: bool = False  # this caller holds the one probe request after the cool-down
    latency_p50_ms: float | None = None
    ttft_p50_ms: float | None = None
    throughput_p50: float | None = None  # tokens per second
    # Percentages; `view()` leaves them None (the hot path reads only the 60-second ring), the
    # /endpoints view gets them from `endpoint_stats()`.
    uptime_5m: float | None = None
    uptime_30m: float | None = None
    uptime_1d: float | None = None
    retry_after_s: float | None = None  # while open: seconds left in the cool-down


HEALTHY = EndpointHealth()


@dataclass(frozen=True, slots=True)
class HealthView:
    by_endpoint: Mapping[int, EndpointHealth] = field(default_factory=dict)

    def get(self, endpoint_id: int) -> EndpointHealth:
        return self.by_endpoint.get(endpoint_id, HEALTHY)


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """Thresholds: the HEALTH_* settings, read once per store (tests build their own)."""

    cb_failures: int = 5
    cb_error_rate: float = 0.5
    cb_min_requests: int = 10
    cb_window_s: int = 60
    cb_cooldown_s: float = 30.0
    cb_probe_ttl_s: float = 30.0
    outage_window_s: int = 30
    outage_min_errors: int = 2
    sample_cap: int = 500
    p50_window_s: int = 300
    # Medians are recomputed by record() at most this often: sorting samples per request is waste.
    p50_refresh_ms: int = 1_000

    @property
    def slots(self) -> int:
        # Ring of 10-second buckets long enough for both windows, plus the bucket being filled.
        return -(-max(self.cb_window_s, self.outage_window_s) // (SLOT_MS // 1000)) + 1

    @classmethod
    def from_settings(cls) -> HealthConfig:
        return cls(
            cb_failures=settings.HEALTH_CB_FAILURES,
            cb_error_rate=settings.HEALTH_CB_ERROR_RATE,
            cb_min_requests=settings.HEALTH_CB_MIN_REQUESTS,
            cb_window_s=settings.HEALTH_CB_WINDOW_S,
            cb_cooldown_s=settings.HEALTH_CB_COOLDOWN_S,
            cb_probe_ttl_s=settings.HEALTH_CB_PROBE_TTL_S,
            outage_min_errors=settings.HEALTH_OUTAGE_MIN_ERRORS,
        )


SLOT_MS = 10_000
MINUTES_PER_DAY = 1_440


def throughput(tokens: int | None, duration_ms: float | None, ttft_ms: float | None) -> float | None:
    """Output tokens per second while generating (after the first token when we know when that was)."""
    if not tokens or not duration_ms:
        return None
    generating = duration_ms - ttft_ms if ttft_ms is not None and duration_ms > ttft_ms else duration_ms
    return tokens / (generating / 1000) if generating > 0 else None


def _median(values: list[float]) -> float | None:
    return percentile(values, 50)


def percentile(values: list[float], pct: int) -> float | None:
    """Nearest-rank percentile (no interpolation, so every reported value was really observed)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(-(-pct * len(ordered) // 100), 1)
    return ordered[rank - 1]


class HealthStore:
    """Where endpoint health lives; `get_health_store()` picks Redis or in-process memory."""

    def __init__(self, config: HealthConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        self.config = config or HealthConfig.from_settings()
        self.clock = clock

    async def view(self, endpoint_ids: Iterable[int]) -> HealthView:
        raise NotImplementedError

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
    ) -> None:
        raise NotImplementedError

    def stats(self, endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections (the Redis store); the store must not be used afterwards."""


# --- in-process store -----------------------------------------------------------------------------


@dataclass
class _Endpoint:
    consecutive: int = 0
    open_until: float = 0.0  # ms; 0 = closed
    probe_until: float = 0.0  # ms; a probe is out until then
    ring: dict[int, list[int]] = field(default_factory=dict)  # slot -> [ok, err, rate_limited]
    minutes: dict[int, list[int]] = field(default_factory=dict)  # minute -> [ok, err]
    samples: deque[tuple[float, float | None, float | None, float | None]] = field(default_factory=deque)
    medians: tuple[float | None, float | None, float | None] = (None, None, None)
    medians_at: float = float("-inf")


class MemoryHealthStore(HealthStore):
    """The embedded single-process default (no REDIS_URL). Same rules as the Redis store's scripts."""

    def __init__(self, config: HealthConfig | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, clock)
        self._endpoints: dict[int, _Endpoint] = {}
        self._lock = threading.Lock()  # stats() is called from sync views in other threads

    def _window(self, ep: _Endpoint, slot: int, width: int) -> tuple[int, int, int]:
        ok = err = limited = 0
        for s in range(slot - width + 1, slot + 1):
            bucket = ep.ring.get(s)
            if bucket:
                ok, err, limited = ok + bucket[0], err + bucket[1], limited + bucket[2]
        return ok, err, limited

    def _health(self, ep: _Endpoint, now_ms: float) -> EndpointHealth:
        cfg = self.config
        slot = int(now_ms // SLOT_MS)
        ok, err, limited = self._window(ep, slot, cfg.outage_window_s * 1000 // SLOT_MS)
        failures = err + limited
        outage = failures >= cfg.outage_min_errors and failures >= ok
        state, retry = _circuit(ep, now_ms, cfg)
        latency, ttft, tps = ep.medians
        return EndpointHealth(
            recent_outage=outage,
            circuit_open=state == "open",
            half_open_probe=state == "probe",
            latency_p50_ms=latency,
            ttft_p50_ms=ttft,
            throughput_p50=tps,
            retry_after_s=retry,
        )

    async def view(self, endpoint_ids: Iterable[int]) -> HealthView:
        now_ms = self.clock() * 1000
        with self._lock:
            return HealthView(
                {eid: self._health(ep, now_ms) for eid in endpoint_ids if (ep := self._endpoints.get(eid)) is not None}
            )

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
    ) -> None:
        now_ms = self.clock() * 1000
        cfg = self.config
        with self._lock:
            ep = self._endpoints.setdefault(endpoint_id, _Endpoint())
            slot = int(now_ms // SLOT_MS)
            for old in [s for s in ep.ring if s <= slot - cfg.slots]:
                del ep.ring[old]
            bucket = ep.ring.setdefault(slot, [0, 0, 0])
            bucket[2 if rate_limited else (0 if ok else 1)] += 1
            if not rate_limited:
                minute = int(now_ms // 60_000)
                ep.minutes.setdefault(minute, [0, 0])[0 if ok else 1] += 1
                for old in [m for m in ep.minutes if m <= minute - MINUTES_PER_DAY]:
                    del ep.minutes[old]
            if ok:
                ep.consecutive = 0
                if ep.open_until:
                    # Closed by a success: start clean so old errors do not trip it again at once.
                    ep.open_until = ep.probe_until = 0.0
                    ep.ring.clear()
                    ep.ring[slot] = [1, 0, 0]
                tps = throughput(tokens, duration_ms, ttft_ms)
                if latency_ms is not None or ttft_ms is not None or tps is not None:
                    ep.samples.appendleft((now_ms, latency_ms, ttft_ms, tps))
                    while len(ep.samples) > cfg.sample_cap:
                        ep.samples.pop()
                    if now_ms - ep.medians_at >= cfg.p50_refresh_ms:
                        cutoff = now_ms - cfg.p50_window_s * 1000
                        recent = [s for s in ep.samples if s[0] >= cutoff]
                        ep.medians = (
                            _median([s[1] for s in recent if s[1] is not None]),
                            _median([s[2] for s in recent if s[2] is not None]),
                            _median([s[3] for s in recent if s[3] is not None]),
                        )
                        ep.medians_at = now_ms
            elif not rate_limited:
                ep.consecutive += 1
                if _should_open(ep, now_ms, cfg, self._window(ep, slot, cfg.cb_window_s * 1000 // SLOT_MS)):
                    ep.open_until = now_ms + cfg.cb_cooldown_s * 1000
                    ep.probe_until = 0.0

    def stats(self, endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
        now_ms = self.clock() * 1000
        with self._lock:
            out: dict[int, dict[str, Any]] = {}
            for eid in endpoint_ids:
                ep = self._endpoints.get(eid, _Endpoint())
                out[eid] = _stats_dict({m: (v[0], v[1]) for m, v in ep.minutes.items()}, list(ep.samples), now_ms)
            return out


def _circuit(ep: _Endpoint, now_ms: float, cfg: HealthConfig) -> tuple[str, float | None]:
    """closed / open / probe for this caller; claiming the probe is part of looking (atomic in Redis)."""
    if not ep.open_until:
        return "closed", None
    if now_ms < ep.open_until:
        return "open", (ep.open_until - now_ms) / 1000
    if ep.probe_until <= now_ms:
        ep.probe_until = now_ms + cfg.cb_probe_ttl_s * 1000
        return "probe", None
    return "open", (ep.probe_until - now_ms) / 1000


def _should_open(ep: _Endpoint, now_ms: float, cfg: HealthConfig, window: tuple[int, int, int]) -> bool:
    if ep.open_until:
        # Failures while cooling down are stragglers from before; after it, any failure (the probe's) reopens.
        return now_ms >= ep.open_until
    if ep.consecutive >= cfg.cb_failures:
        return True
    ok, err, _ = window
    return ok + err >= cfg.cb_min_requests and err >= cfg.cb_error_rate * (ok + err)


def _stats_dict(
    minutes: Mapping[int, tuple[int, int]],
    samples: list[tuple[float, float | None, float | None, float | None]],
    now_ms: float,
) -> dict[str, Any]:
    minute = int(now_ms // 60_000)

    def uptime(span: int) -> float | None:
        ok = sum(v[0] for m, v in minutes.items() if m > minute - span)
        err = sum(v[1] for m, v in minutes.items() if m > minute - span)
        return round(100 * ok / (ok + err), 2) if ok + err else None

    recent = [s for s in samples if s[0] >= now_ms - 30 * 60_000]
    ttft = [s[2] for s in recent if s[2] is not None] or [s[1] for s in recent if s[1] is not None]
    tps = [s[3] for s in recent if s[3] is not None]

    def percentiles(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {f"p{p}": round(percentile(values, p) or 0.0, 2) for p in (50, 75, 90, 99)}

    return {
        "uptime_last_5m": uptime(5),
        "uptime_last_30m": uptime(30),
        "uptime_last_1d": uptime(MINUTES_PER_DAY),
        "latency_last_30m": percentiles(ttft),
        "throughput_last_30m": percentiles(tps),
    }


# --- Redis store (shared by every gateway process) --------------------------------------------------

# The scripts live beside this module so they read as Lua (one round trip each).
_LUA_DIR = Path(__file__).with_name("health_lua")
_RECORD_LUA = (_LUA_DIR / "record.lua").read_text()
_VIEW_LUA = (_LUA_DIR / "view.lua").read_text()

KEY_PREFIX = "health:ep:"
_KEY_TTL_MS = 2 * 86_400_000  # an endpoint nobody calls for two days forgets its history


def _opt_float(raw: bytes | str) -> float | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    return float(text) if text else None


def _sample(now_ms: int, latency: float | None, ttft: float | None, tps: float | None) -> str:
    if latency is None and ttft is None and tps is None:
        return ""
    return " ".join([str(now_ms), *("-" if v is None else f"{v:.3f}" for v in (latency, ttft, tps))])


class _Script(Protocol):
    """A Lua script registered on an async client (common.redis.async_script)."""

    async def __call__(self, keys: Sequence[str] | None = None, args: Sequence[Any] | None = None) -> Any: ...


class RedisHealthStore(HealthStore):
    """Health in Redis: every process sees the same state; each call is one script (one round trip).

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

    async def view(self, endpoint_ids: Iterable[int]) -> HealthView:
        ids = list(dict.fromkeys(endpoint_ids))
        if not ids:
            return HealthView({})
        cfg = self.config
        view_script, _ = self._scripts()
        rows = await view_script(
            keys=[f"{KEY_PREFIX}{eid}" for eid in ids],
            args=[
                self._now_ms(),
                cfg.slots,
                SLOT_MS,
                cfg.outage_window_s * 1000 // SLOT_MS,
                cfg.outage_min_errors,
                int(cfg.cb_probe_ttl_s * 1000),
            ],
        )
        by_endpoint: dict[int, EndpointHealth] = {}
        for eid, row in zip(ids, rows, strict=True):
            if not row:
                continue
            outage, state, retry, lat, ttft, tps = (v.decode() if isinstance(v, bytes) else v for v in row)
            retry_ms = _opt_float(retry)
            by_endpoint[eid] = EndpointHealth(
                recent_outage=outage == "1",
                circuit_open=state == "open",
                half_open_probe=state == "probe",
                latency_p50_ms=_opt_float(lat),
                ttft_p50_ms=_opt_float(ttft),
                throughput_p50=_opt_float(tps),
                retry_after_s=retry_ms / 1000 if retry_ms is not None else None,
            )
        return HealthView(by_endpoint)

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
    ) -> None:
        cfg = self.config
        now_ms = self._now_ms()
        kind = "rl" if rate_limited else ("ok" if ok else "err")
        key = f"{KEY_PREFIX}{endpoint_id}"
        sample = _sample(now_ms, latency_ms, ttft_ms, throughput(tokens, duration_ms, ttft_ms)) if ok else ""
        _, record_script = self._scripts()
        await record_script(
            keys=[key, f"{key}:mok", f"{key}:merr", f"{key}:s"],
            args=[
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
            ],
        )

    async def close(self) -> None:
        # The clients are the process's shared ones (common.redis closes them at shutdown): only
        # forget the scripts bound to them.
        self._client = self._bound = None

    def stats(self, endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
        pipe = sync_redis(self.url).pipeline(transaction=False)
        for eid in endpoint_ids:
            key = f"{KEY_PREFIX}{eid}"
            pipe.hgetall(f"{key}:mok")
            pipe.hgetall(f"{key}:merr")
            pipe.lrange(f"{key}:s", 0, -1)
        results = pipe.execute()
        now_ms = self._now_ms()
        out: dict[int, dict[str, Any]] = {}
        for n, eid in enumerate(endpoint_ids):
            oks, errs, raw_samples = results[3 * n : 3 * n + 3]
            minutes: dict[int, tuple[int, int]] = {}
            for minute in {*oks, *errs}:
                minutes[int(minute)] = (int(oks.get(minute, 0)), int(errs.get(minute, 0)))
            samples = [_parse_sample(s) for s in raw_samples]
            out[eid] = _stats_dict(minutes, samples, now_ms)
        return out


def _parse_sample(raw: bytes) -> tuple[float, float | None, float | None, float | None]:
    ts, lat, ttft, tps = raw.decode().split()
    values = [None if v == "-" else float(v) for v in (lat, ttft, tps)]
    return float(ts), values[0], values[1], values[2]


_store: HealthStore | None = None
_store_lock = threading.Lock()


def get_health_store() -> HealthStore:
    """The process's store: Redis when REDIS_URL is set, else in-process memory."""
    global _store
    with _store_lock:
        if _store is None:
            _store = RedisHealthStore() if configured() else MemoryHealthStore()
        return _store


def endpoint_stats(endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For the /models/{author}/{slug}/endpoints view: uptime and latency/throughput percentiles.

    Synchronous (the catalog views are sync). Endpoints without data get None values.
    """
    return get_health_store().stats(endpoint_ids)
