"""The credit gate: admission holds a request's worst-case cost so concurrent gateways cannot overspend.

Available credit = settled credits in - every charge so far (settled or not) - open reservations.
With REDIS_URL the state lives in Redis and each admit/finish is one Lua script (one round trip),
shared by every gateway process; without it, `MemoryGate` keeps the same state in one process.
docs/billing.md explains the accounts, the math and the failure cases.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import redis
from asgiref.sync import sync_to_async
from django.conf import settings

from billing.selectors import UsageWindows, key_settled_usage, org_ledger_snapshot, orgs_with_credit_changes_since
from billing.usage import UsageEvent
from common.money import NANOS_PER_USD, fee_nanos, nanos_to_usd_number

if TYPE_CHECKING:
    from billing.gate_memory import MemoryGate
from common.redis import async_redis

log = logging.getLogger(__name__)

STREAM = "gate:q"
GROUP = "settle"
WINDOW_TTL = 40 * 86400  # a monthly window must outlive its month
EMBEDDED_RESYNC_SECONDS = 5.0
REFUSAL_RESYNC_SECONDS = 5
MEMORY_GATE_MAX_IDS = 200_000  # the embedded gate forgets the oldest finished/settled ids beyond this
BYOK_COUNTER_TTL = 40 * 86400


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the gate needs to know about the calling key (built by the gateway from its key cache)."""

    key_id: int
    key_hash: str
    org_id: int
    limit_nanos: int | None
    limit_reset: str | None  # daily | weekly | monthly | None (a lifetime limit)
    include_byok_in_limit: bool
    user_id: int | None


@dataclass(frozen=True, slots=True)
class Admission:
    ok: bool
    status: int = 200
    code: str = ""
    message: str = ""
    retry_after: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, object] | None = None


ADMITTED = Admission(ok=True)


class CreditGate(Protocol):
    """admit: `amount_nanos` is the LIST-price worst case of everything the request may run (for
    BYOK too: the gate itself holds the fee of it); `reservation_id` is unique per request.
    finish: releases the hold; with an event, charges it once and queues it for settlement."""

    async def admit(
        self, *, reservation_id: str, key: KeyState, amount_nanos: int, is_free: bool, is_byok: bool
    ) -> Admission: ...

    async def finish(self, *, reservation_id: str, key: KeyState, event: UsageEvent | None) -> int: ...


@dataclass(frozen=True, slots=True)
class Periods:
    """Window ids for one instant: key-limit windows (UTC days, Monday weeks, months) and rate windows."""

    day: str
    week: str
    month: str
    minute: int
    minute_reset_ms: int
    day_reset_ms: int

    @classmethod
    def at(cls, ts: float) -> Periods:
        now = datetime.fromtimestamp(ts, UTC)
        w = UsageWindows.at(now)
        next_day = w.day + timedelta(days=1)
        return cls(
            day="d" + w.day.strftime("%Y%m%d"),
            week="w" + w.week.strftime("%Y%m%d"),
            month="m" + w.month.strftime("%Y%m"),
            minute=int(ts // 60),
            minute_reset_ms=(int(ts // 60) + 1) * 60_000,
            day_reset_ms=int(next_day.timestamp() * 1000),
        )

    def for_reset(self, limit_reset: str | None) -> str:
        return {"daily": self.day, "weekly": self.week, "monthly": self.month}.get(limit_reset or "", "all")


def _usd(nanos: int) -> str:
    return f"${nanos_to_usd_number(max(nanos, 0)):.6f}".rstrip("0").rstrip(".")


def _refusal(verdict: str, value: int, extra: int, amount: int, now: float) -> Admission:
    """Turn a gate verdict into the API's error (status, message, metadata, headers)."""
    if verdict == "negative":
        return Admission(
            ok=False,
            status=402,
            code="negative_balance",
            message="Your account balance is negative. Add credits to continue, free models included.",
            metadata={"limit_source": "openrouter_credits"},
        )
    if verdict == "credits":
        return Admission(
            ok=False,
            status=402,
            code="insufficient_credits",
            message=f"Insufficient credits: this request can cost up to {_usd(amount)} but only {_usd(value)} "
            "is available. Add credits or lower max_tokens.",
            metadata={"limit_source": "openrouter_credits"},
        )
    if verdict == "key_limit":
        return Admission(
            ok=False,
            status=402,
            code="key_limit_exceeded",
            message=f"Key limit exceeded: this request can cost up to {_usd(amount)} but the key has "
            f"{_usd(value)} left. Raise the key's limit or wait for it to reset.",
            metadata={"limit_source": "openrouter_key_limit"},
        )
    p = Periods.at(now)
    if verdict == "rpm":
        code, reset_ms = "free-models-per-min", p.minute_reset_ms
        message = "Rate limit exceeded: free-models-per-min."
    else:
        high = extra == 1
        code, reset_ms = ("free-models-per-day-high-balance" if high else "free-models-per-day"), p.day_reset_ms
        message = f"Rate limit exceeded: {code}."
        if not high:
            message += (
                f" Add {settings.FREE_MODEL_CREDITS_THRESHOLD_USD} credits to unlock "
                f"{settings.FREE_MODEL_RPD_WITH_CREDITS} free model requests per day"
            )
    headers = {"X-RateLimit-Limit": str(value), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)}
    retry = max(1, -(-(reset_ms - int(now * 1000)) // 1000))
    return Admission(
        ok=False,
        status=429,
        code=code,
        message=message,
        retry_after=retry,
        headers=headers,
        metadata={"headers": headers},
    )


def _byok_fee(amount: int) -> int:
    return fee_nanos(amount, settings.BYOK_FEE_PERCENT)


def _threshold_nanos() -> int:
    return settings.FREE_MODEL_CREDITS_THRESHOLD_USD * NANOS_PER_USD


def _now() -> float:
    return datetime.now(UTC).timestamp()


_SCRIPT_DIR = Path(__file__).with_name("gate_lua")


@functools.cache
def _lua(name: str) -> str:
    source = (_SCRIPT_DIR / f"{name}.lua").read_text()
    if name in ("finish", "expire"):
        source = (_SCRIPT_DIR / "release.lua").read_text() + "\n" + source
    return source


def _org(org_id: int) -> str:
    return f"gate:o:{org_id}"


def _key(key_hash: str) -> str:
    return f"gate:k:{key_hash}"


def _windows(key_hash: str, p: Periods) -> list[str]:
    return [f"gate:ku:{key_hash}:{w}" for w in ("all", p.day, p.week, p.month)]


class RedisGate:
    """The shared gate: every gateway process and worker sees the same holds and counters."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sync = redis.Redis.from_url(url)
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._sync_scripts = {n: self.sync.register_script(_lua(n)) for n in ("load_org", "load_key", "expire")}

    def _scripts(self) -> dict[str, Any]:
        # redis.asyncio clients are bound to the loop that created them (tests run several loops).
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            client = async_redis(self.url)
            found = {n: client.register_script(_lua(n)) for n in ("admit", "finish")}
            found["client"] = client
            self._async[loop] = found
        return found

    async def admit(
        self, *, reservation_id: str, key: KeyState, amount_nanos: int, is_free: bool, is_byok: bool
    ) -> Admission:
        now = _now()
        p = Periods.at(now)
        keys = [
            _org(key.org_id),
            _key(key.key_hash),
            f"gate:ku:{key.key_hash}:{p.for_reset(key.limit_reset)}",
            f"gate:fm:{key.key_hash}:{p.minute}",
            f"gate:fd:{key.org_id}:{p.day}",
            "gate:rs",
            "gate:rz",
        ]
        args = [
            reservation_id,
            amount_nanos,
            int(is_free),
            int(is_byok),
            -1 if key.limit_nanos is None else key.limit_nanos,
            int(key.include_byok_in_limit),
            _byok_fee(amount_nanos) if is_byok else 0,
            int(now) + settings.RESERVATION_TTL_SECONDS,
            settings.FREE_MODEL_RPM,
            settings.FREE_MODEL_RPD_NO_CREDITS,
            settings.FREE_MODEL_RPD_WITH_CREDITS,
            _threshold_nanos(),
            key.org_id,
            key.key_hash,
        ]
        script = self._scripts()["admit"]
        result = await script(keys=keys, args=args)
        if result[0] == b"cold":
            # Only after a Redis restart or for a never-seen org/key: load the mirror, then retry once.
            await sync_to_async(self._warm)(key, int(result[1]), now)
            result = await script(keys=keys, args=args)
        elif result[0] in (b"credits", b"negative") and await self._may_resync(key.org_id):
            # A missed ledger hook (Redis briefly down at a top-up's commit) must not refuse forever:
            # a refusal re-reads the ledger, at most once per org every few seconds.
            await sync_to_async(self.org_balance_sync)(key.org_id)
            result = await script(keys=keys, args=args)
        verdict = result[0].decode()
        if verdict == "ok":
            return ADMITTED
        if verdict == "cold":
            raise RuntimeError("gate mirror could not be loaded")
        extra = int(result[2]) if len(result) > 2 else 0
        hold = _byok_fee(amount_nanos) if is_byok else amount_nanos
        return _refusal(verdict, int(result[1]), extra, hold, now)

    async def _may_resync(self, org_id: int) -> bool:
        client = self._scripts()["client"]
        return bool(await client.set(f"gate:rsync:{org_id}", 1, nx=True, ex=REFUSAL_RESYNC_SECONDS))

    def _warm(self, key: KeyState, mask: int, now: float) -> None:
        if mask & 1:
            self.org_balance_sync(key.org_id)
        if mask & 2:
            self._load_key(key.key_id, key.key_hash, now)

    def _load_key(self, key_id: int, key_hash: str, now: float) -> None:
        p = Periods.at(now)
        u = key_settled_usage(key_id, UsageWindows.at(datetime.fromtimestamp(now, UTC)))
        args = [u[f"{kind}_{w}"] for w in ("all", "d", "w", "m") for kind in ("u", "b")]
        self._sync_scripts["load_key"](keys=[_key(key_hash), *_windows(key_hash, p)], args=[*args, WINDOW_TTL])

    async def finish(self, *, reservation_id: str, key: KeyState, event: UsageEvent | None) -> int:
        p = Periods.at(event.created_at if event else _now())
        org_id = event.organization_id if event else key.org_id
        keys = [
            f"gate:f:{reservation_id}",
            _org(org_id),
            *_windows(key.key_hash, p),
            f"gate:bq:{org_id}:{p.month}",
            STREAM,
        ]
        list_cost = event.list_cost_nanos if event else 0
        args = [
            reservation_id,
            int(event is not None),
            list_cost,
            _byok_fee(list_cost),
            int(bool(event and event.is_byok)),
            settings.BYOK_FREE_REQUESTS_PER_MONTH,
            event.to_json() if event else b"",
            WINDOW_TTL,
            # finish() is retried within a request's lifetime; twice the hold's TTL is ample.
            2 * settings.RESERVATION_TTL_SECONDS,
            BYOK_COUNTER_TTL,
        ]
        charged = int(await self._scripts()["finish"](keys=keys, args=args))
        if event is not None:
            event.cost_nanos = charged
        return charged

    # --- sync side: views, workers, ledger hooks ------------------------------------------------

    def org_balance_sync(self, org_id: int) -> None:
        s = org_ledger_snapshot(org_id)
        self._sync_scripts["load_org"](
            keys=[_org(org_id)], args=[s.credits_in_nanos, s.version, s.purchased_nanos, s.settled_usage_nanos]
        )

    def org_credit_view(self, org_id: int) -> dict[str, int]:
        if not self.sync.hexists(_org(org_id), "ld"):
            self.org_balance_sync(org_id)
        raw = self.sync.hmget(_org(org_id), "cin", "spent", "res", "uns", "bought")
        names = ("credits", "spent", "reserved", "unsettled", "purchased")
        return {name: int(value or 0) for name, value in zip(names, raw, strict=True)}

    def key_usage(self, key_id: int, key_hash: str) -> dict[str, int]:
        now = _now()
        if not self.sync.hexists(_key(key_hash), "ld"):
            self._load_key(key_id, key_hash, now)
        pipe = self.sync.pipeline(transaction=False)
        for name in _windows(key_hash, Periods.at(now)):
            pipe.hmget(name, "u", "b")
        rows = pipe.execute()
        return _usage_dict([(int(u or 0), int(b or 0)) for u, b in rows])

    def free_requests_today(self, org_id: int) -> int:
        return int(self.sync.get(f"gate:fd:{org_id}:{Periods.at(_now()).day}") or 0)

    def expire_reservations(self, now: float | None = None, limit: int = 1000) -> int:
        return int(self._sync_scripts["expire"](keys=["gate:rz", "gate:rs"], args=[now or _now(), limit]))


def _usage_dict(rows: list[tuple[int, int]]) -> dict[str, int]:
    names = ("total", "daily", "weekly", "monthly")
    out = {name: u for name, (u, _) in zip(names, rows, strict=True)}
    out.update({f"byok_{name}": b for name, (_, b) in zip(names, rows, strict=True)})
    return out


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A usage event waiting for settlement, with the charge the gate decided at finish()."""

    msg_id: str
    charge_nanos: int
    event: UsageEvent


@functools.cache
def get_gate() -> RedisGate | MemoryGate:
    """The per-process gate: Redis-backed when REDIS_URL is set, else the embedded in-process one."""
    if settings.REDIS_URL:
        return RedisGate(settings.REDIS_URL)
    from billing.gate_memory import MemoryGate

    return MemoryGate()


def _key_id(key_hash: str) -> int:
    from organizations.models import ApiKey

    return int(ApiKey.objects.values_list("pk", flat=True).get(hash=key_hash))


def org_credit_view(org_id: int) -> dict[str, int]:
    """Credits in, everything spent (settled or not), open reservations, unsettled usage, purchases."""
    return get_gate().org_credit_view(org_id)


def org_unsettled_nanos(org_id: int) -> int:
    return org_credit_view(org_id)["unsettled"]


def org_reserved_nanos(org_id: int) -> int:
    return org_credit_view(org_id)["reserved"]


def key_usage_nanos(key_hash: str) -> dict[str, int]:
    """{"total","daily","weekly","monthly","byok_total","byok_daily",...}: unsettled usage included."""
    return get_gate().key_usage(_key_id(key_hash), key_hash)


def free_model_daily_requests(org_id: int) -> dict[str, int]:
    """The /key object's `free_model_daily_requests` (the daily cap is per organization)."""
    gate = get_gate()
    bought = gate.org_credit_view(org_id)["purchased"] >= _threshold_nanos()
    limit = settings.FREE_MODEL_RPD_WITH_CREDITS if bought else settings.FREE_MODEL_RPD_NO_CREDITS
    used = gate.free_requests_today(org_id)
    return {"used": used, "limit": limit, "remaining": max(limit - used, 0)}


def org_balance_sync(org_id: int) -> None:
    """Push the settled ledger to the gate; ledger_post calls this on commit for every org entry."""
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
