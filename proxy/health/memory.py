"""The in-process store: the embedded single-process default (no REDIS_URL), same rules as the Lua."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from proxy.health.base import (
    MINUTES_PER_DAY,
    SLOT_MS,
    EndpointHealth,
    HealthConfig,
    HealthStore,
    HealthView,
    median,
    stats_dict,
    throughput,
    tool_error_rate,
)


@dataclass
class _Endpoint:
    consecutive: int = 0
    open_until: float = 0.0  # ms; 0 = closed
    probe_until: float = 0.0  # ms; a probe is out until then
    ring: dict[int, list[int]] = field(default_factory=dict)  # slot -> [ok, err, rate_limited]
    minutes: dict[int, list[int]] = field(default_factory=dict)  # minute -> [ok, err]
    samples: deque[tuple[float, float | None, float | None, float | None]] = field(default_factory=deque)
    failing_orgs: dict[int | None, float] = field(default_factory=dict)  # org -> its last failure (ms)
    medians: tuple[float | None, float | None, float | None] = (None, None, None)
    medians_at: float = float("-inf")
    tools: dict[int, list[int]] = field(default_factory=dict)  # minute -> [tool-call responses, bad]


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
            tool_error_rate=tool_error_rate(_pairs(ep.tools), now_ms, self.config),
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
        org_id: int | None = None,
        tool_calls_ok: bool | None = None,
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
            if ok and tool_calls_ok is not None:
                minute = int(now_ms // 60_000)
                counts = ep.tools.setdefault(minute, [0, 0])
                counts[0] += 1
                counts[1] += 0 if tool_calls_ok else 1
                for old in [m for m in ep.tools if m <= minute - cfg.tool_window_min]:
                    del ep.tools[old]
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
                            median([s[1] for s in recent if s[1] is not None]),
                            median([s[2] for s in recent if s[2] is not None]),
                            median([s[3] for s in recent if s[3] is not None]),
                        )
                        ep.medians_at = now_ms
            elif not rate_limited:
                ep.consecutive += 1
                cutoff = now_ms - cfg.cb_window_s * 1000
                ep.failing_orgs = {o: t for o, t in ep.failing_orgs.items() if t >= cutoff}
                ep.failing_orgs[org_id] = now_ms
                window = self._window(ep, slot, cfg.cb_window_s * 1000 // SLOT_MS)
                if _should_open(ep, now_ms, cfg, window, len(ep.failing_orgs)):
                    ep.open_until = now_ms + cfg.cb_cooldown_s * 1000
                    ep.probe_until = 0.0

    def stats(self, endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
        now_ms = self.clock() * 1000
        with self._lock:
            out: dict[int, dict[str, Any]] = {}
            for eid in endpoint_ids:
                ep = self._endpoints.get(eid, _Endpoint())
                minutes = {m: (v[0], v[1]) for m, v in ep.minutes.items()}
                tool_rate = tool_error_rate(_pairs(ep.tools), now_ms, self.config)
                out[eid] = stats_dict(minutes, list(ep.samples), now_ms, tool_rate)
            return out


def _pairs(counts: dict[int, list[int]]) -> dict[int, tuple[int, int]]:
    return {m: (v[0], v[1]) for m, v in counts.items()}


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


def _should_open(
    ep: _Endpoint, now_ms: float, cfg: HealthConfig, window: tuple[int, int, int], failing_orgs: int
) -> bool:
    if ep.open_until:
        # Failures while cooling down are stragglers from before; after it, any failure (the probe's) reopens.
        return now_ms >= ep.open_until
    if failing_orgs < cfg.cb_min_orgs:
        return False
    if ep.consecutive >= cfg.cb_failures:
        return True
    ok, err, _ = window
    return ok + err >= cfg.cb_min_requests and err >= cfg.cb_error_rate * (ok + err)
