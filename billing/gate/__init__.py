"""The credit gate: admission holds a request's worst-case cost so concurrent gateways cannot overspend.

Available credit = settled credits in - every charge so far (settled or not) - open reservations.
With REDIS_URL the state lives in Redis and each admit/finish is one Lua script (one round trip),
shared by every gateway process (`RedisGate`); without it, `MemoryGate` keeps the same state in one
process. docs/billing.md explains the accounts, the math and the failure cases.

The package: `rules` (the decisions, pure), `keys` (every Redis key), `queue` (the usage queue that
finish() feeds and settlement drains), the two gates, and here the per-process factory and the live
reads the views and tasks use.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from django.conf import settings

from billing.gate.contract import ADMITTED, Admission, CreditGate, KeyState
from billing.gate.memory_gate import MemoryGate, Settle
from billing.gate.queue import QueuedEvent, UsageQueue
from billing.gate.redis_gate import RedisGate
from billing.gate.rules import Limits, Periods
from billing.selectors import orgs_with_credit_changes_since
from common.redis import configured

__all__ = [
    "ADMITTED",
    "Admission",
    "CreditGate",
    "KeyState",
    "MemoryGate",
    "Periods",
    "QueuedEvent",
    "RedisGate",
    "UsageQueue",
    "free_model_daily_requests",
    "gate_housekeeping",
    "get_gate",
    "key_usage_nanos",
    "org_balance_sync",
    "org_credit_view",
    "settle_embedded_with",
    "usage_queue",
]

_embedded: dict[str, Settle] = {}


def settle_embedded_with(settle: Settle) -> None:
    """The service the embedded gate settles its own queue with (billing.apps passes settlement's;
    settlement sits above the gate, so it is handed in rather than imported)."""
    _embedded["settle"] = settle


@functools.cache
def get_gate() -> RedisGate | MemoryGate:
    """The per-process gate: Redis-backed when REDIS_URL is set, else the embedded in-process one."""
    if configured():
        return RedisGate(settings.REDIS_URL)
    return MemoryGate(settle=_embedded.get("settle"), counters_file=settings.GATE_COUNTERS_FILE)


def usage_queue() -> UsageQueue:
    """The queue the process's gate feeds: the Redis stream (as SETTLEMENT_CONSUMER) or the embedded one."""
    return get_gate().queue()


def org_credit_view(org_id: int) -> dict[str, int]:
    """Credits in, everything spent (settled or not), open reservations, unsettled usage, purchases."""
    return get_gate().org_credit_view(org_id)


def key_usage_nanos(key_id: int, key_hash: str, org_id: int) -> dict[str, int]:
    """{"total","daily","weekly","monthly","byok_total","byok_daily",...}: unsettled usage included."""
    return get_gate().key_usage(key_id, key_hash, org_id)


def free_model_daily_requests(org_id: int) -> dict[str, int]:
    """The /key object's `free_model_daily_requests` (the daily cap is per organization)."""
    gate = get_gate()
    limit, _ = Limits.current().free_daily_cap(gate.org_credit_view(org_id)["purchased"])
    used = gate.free_requests_today(org_id)
    return {"used": used, "limit": limit, "remaining": max(limit - used, 0)}


def org_balance_sync(org_id: int) -> None:
    """Push the settled ledger to the gate; billing.apps subscribes this to the ledger's credit changes."""
    get_gate().org_balance_sync(org_id)


def gate_housekeeping(*, now: float | None = None, lookback_s: int = 600) -> dict[str, int]:
    """Every 30 s (task billing.reservations_expire): release the holds of requests that never came
    back, and re-sync organizations whose credits changed recently, in case a ledger hook was lost
    (a lost refund hook would otherwise leave the gate admitting against credit that is gone)."""
    gate = get_gate()
    expired = gate.expire_reservations(now=now)
    org_ids = orgs_with_credit_changes_since(datetime.now(UTC) - timedelta(seconds=lookback_s))
    for org_id in org_ids:
        gate.org_balance_sync(org_id)
    return {"expired": expired, "resynced": len(org_ids)}
