"""The Redis store, shared by every gateway process: each view or record is one Lua script call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from common.redis import AsyncRedis, async_redis, async_script, sync_redis
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

# The scripts live beside this module so they read as Lua (one round trip each).
_LUA_DIR = Path(__file__).with_name("lua")
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
                cfg.tool_window_min,
                cfg.tool_min_calls,
            ],
        )
        by_endpoint: dict[int, EndpointHealth] = {}
        for eid, row in zip(ids, rows, strict=True):
            if not row:
                continue
            outage, state, retry, lat, ttft, tps, tools = (v.decode() if isinstance(v, bytes) else v for v in row)
            retry_ms = _opt_float(retry)
            by_endpoint[eid] = EndpointHealth(
                recent_outage=outage == "1",
                circuit_open=state == "open",
                half_open_probe=state == "probe",
                latency_p50_ms=_opt_float(lat),
                ttft_p50_ms=_opt_float(ttft),
                throughput_p50=_opt_float(tps),
                retry_after_s=retry_ms / 1000 if retry_ms is not None else None,
                tool_error_rate=_opt_float(tools),
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
        org_id: int | None = None,
        tool_calls_ok: bool | None = None,
    ) -> None:
        cfg = self.config
        now_ms = self._now_ms()
        kind = "rl" if rate_limited else ("ok" if ok else "err")
        key = f"{KEY_PREFIX}{endpoint_id}"
        sample = _sample(now_ms, latency_ms, ttft_ms, throughput(tokens, duration_ms, ttft_ms)) if ok else ""
        _, record_script = self._scripts()
        await record_script(
            keys=[key, f"{key}:mok", f"{key}:merr", f"{key}:s", f"{key}:fo"],
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
                "" if org_id is None else org_id,
                cfg.cb_min_orgs,
                "" if tool_calls_ok is None else ("1" if tool_calls_ok else "0"),
                cfg.tool_window_min,
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
            pipe.hgetall(key)
        results = pipe.execute()
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
