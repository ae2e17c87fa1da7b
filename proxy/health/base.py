"""Endpoint health: what a view reports, the thresholds, and the interface both stores implement."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings


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
    # Of the recent responses that ended in tool calls, the share with a bad call (invalid JSON
    # arguments, unknown tool, arguments failing the tool's schema); None below the sample minimum.
    tool_error_rate: float | None = None


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
    cb_min_orgs: int = 2
    outage_window_s: int = 30
    outage_min_errors: int = 2
    sample_cap: int = 500
    p50_window_s: int = 300
    # Medians are recomputed by record() at most this often: sorting samples per request is waste.
    p50_refresh_ms: int = 1_000
    # Tool-call quality: the share of bad tool-call responses over this many minutes, reported once
    # at least `tool_min_calls` such responses were seen (fewer say nothing about an endpoint).
    tool_window_min: int = 30
    tool_min_calls: int = 5
    # The Redis store keeps the request path off Redis: views come from an in-process snapshot
    # re-read every `snapshot_ms`, read directly when older than `snapshot_stale_ms` (the refresher
    # stalled, or a test moved the clock); successes are written in one batch every `flush_ms`.
    snapshot_ms: int = 200
    snapshot_stale_ms: int = 1_000
    flush_ms: int = 5
    # An endpoint no request has asked about for this long drops out of the snapshot's reads.
    watch_ms: int = 60_000

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
            cb_min_orgs=settings.HEALTH_CB_MIN_ORGS,
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


def tool_error_rate(buckets: Mapping[int, tuple[int, int]], now_ms: float, config: HealthConfig) -> float | None:
    """Bad tool-call responses / tool-call responses over the window; None below the minimum count.

    `buckets`: minute -> (tool-call responses, bad ones)."""
    minute = int(now_ms // 60_000)
    recent = [v for m, v in buckets.items() if m > minute - config.tool_window_min]
    total = sum(v[0] for v in recent)
    if total < config.tool_min_calls:
        return None
    return round(sum(v[1] for v in recent) / total, 4)


def median(values: list[float]) -> float | None:
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
        org_id: int | None = None,
        tool_calls_ok: bool | None = None,
    ) -> None:
        """`tool_calls_ok`: for a success that ended in tool calls, whether every call was usable
        (proxy/plugins/tool_calls.py); None when it made none."""
        raise NotImplementedError

    def stats(self, endpoint_ids: list[int]) -> dict[int, dict[str, Any]]:
        raise NotImplementedError

    async def flush(self) -> None:
        """Write what is buffered and re-read what is cached (the Redis store): after it, `view()`
        shows every record made before it. Tests use it instead of sleeping; a no-op in memory."""

    async def close(self) -> None:
        """Flush, then release connections (the Redis store); the store must not be used afterwards."""


def stats_dict(
    minutes: Mapping[int, tuple[int, int]],
    samples: list[tuple[float, float | None, float | None, float | None]],
    now_ms: float,
    tool_rate: float | None = None,
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
        "tool_call_error_rate_last_30m": tool_rate,
    }
