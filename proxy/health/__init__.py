"""Endpoint health: rolling error counts, latency, throughput and a circuit breaker, shared by every
gateway process through Redis (an in-process store when REDIS_URL is empty).

Routing reads a `HealthView` and the gateway calls `record()` after each attempt; the Redis store
serves views from an in-process snapshot refreshed in the background and writes successes in
batches, so neither is a Redis round trip on a request's path (redis_store.py says when one is).
The rules, all configurable (see docs/routing.md):

* outage: at least HEALTH_OUTAGE_MIN_ERRORS failures (5xx, timeouts, invalid responses, and 429s)
  in the last 30 s, and no fewer failures than successes. Routing deprioritizes, never excludes.
* circuit breaker: opens after HEALTH_CB_FAILURES consecutive failures, or when the error rate over
  the last HEALTH_CB_WINDOW_S seconds reaches HEALTH_CB_ERROR_RATE with at least
  HEALTH_CB_MIN_REQUESTS requests, and in either case only once the failures in that window came
  from at least HEALTH_CB_MIN_ORGS organizations: it judges the provider, and one tenant's requests
  that the provider cannot serve (input it chokes on) must not take it away from everyone else.
  429s never open it (a busy provider is not a broken one); failures with a tenant's own (BYOK)
  key are not recorded at all (the key, not the provider, may be what failed).
  While open, routing skips the endpoint. After HEALTH_CB_COOLDOWN_S one caller of `view()` is
  granted the half-open probe (exclusively, for HEALTH_CB_PROBE_TTL_S); the probe's success closes
  the circuit, its failure reopens it for another cool-down.
* uptime: success / (success + errors) per 5 min, 30 min and 1 day; 429s count as neither
  (contract 10.5).
"""

from __future__ import annotations

import threading
from typing import Any

from common.redis import configured
from proxy.health.base import (
    HEALTHY,
    MINUTES_PER_DAY,
    SLOT_MS,
    EndpointHealth,
    HealthConfig,
    HealthStore,
    HealthView,
    percentile,
    throughput,
)
from proxy.health.keys import KEY_PREFIX
from proxy.health.memory import MemoryHealthStore
from proxy.health.redis_store import RedisHealthStore

__all__ = [
    "HEALTHY",
    "KEY_PREFIX",
    "MINUTES_PER_DAY",
    "SLOT_MS",
    "EndpointHealth",
    "HealthConfig",
    "HealthStore",
    "HealthView",
    "MemoryHealthStore",
    "RedisHealthStore",
    "endpoint_stats",
    "get_health_store",
    "percentile",
    "throughput",
]


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
