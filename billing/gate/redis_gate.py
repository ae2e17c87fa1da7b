"""The shared credit gate: every gateway process and worker sees the same holds and counters in Redis.

Each admit and each finish is one Lua script (one round trip). The scripts get every key name from
keys.py and every number from rules.py, so they only compare and count.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from billing.gate import keys, rules, scripts
from billing.gate.contract import ADMITTED, Admission, KeyState
from billing.gate.lease import LeaseKeeper
from billing.gate.queue import CHARGE_FIELD, EVENT_FIELD, RedisStreamQueue, UsageQueue, decode, encode
from billing.selectors import OrgLedgerSnapshot, UsageWindows, key_settled_usage, org_ledger_snapshot
from billing.usage import UsageEvent
from common.redis import async_redis, hot_script, script, sync_redis

# A refusal re-reads the org's ledger at most this often (see admit()).
REFUSAL_RESYNC_SECONDS = 5

_periods: tuple[float, float, rules.Periods] = (0.0, 0.0, rules.Periods("", "", "", 0))


def periods_at(at: float) -> rules.Periods:
    """rules.Periods.at, computed once per UTC day: weeks and months also turn over at midnight."""
    global _periods
    start, end, found = _periods
    if not start <= at < end:
        found = rules.Periods.at(at)
        end = found.day_reset_ms / 1000
        _periods = (end - 86_400, end, found)
    return found


_AsyncScript = Callable[..., Awaitable[Any]]


class RedisGate:
    """The shared gate: every gateway process and worker sees the same holds and counters."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sync = sync_redis(url)
        self._sync_scripts = {n: script(scripts.source(n), self.sync) for n in ("load_org", "load_key", "expire")}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _AsyncScript]] = (
            weakref.WeakKeyDictionary()
        )
        self.leases = LeaseKeeper(self._renew_leases, lambda: rules.Limits.current().reservation_ttl_s)

    def _script(self, name: str) -> _AsyncScript:
        # Async clients are bound to the loop that created them (tests run several loops).
        loop = asyncio.get_running_loop()
        found = self._async.get(loop)
        if found is None:
            found = self._async[loop] = {n: hot_script(scripts.source(n), self.url) for n in ("admit", "finish")}
        return found[name]

    async def admit(
        self,
        *,
        reservation_id: str,
        key: KeyState,
        amount_nanos: int,
        is_free: bool,
        is_byok: bool,
        plugin_nanos: int = 0,
    ) -> Admission:
        at = rules.now()
        p = periods_at(at)
        limits = rules.Limits.current()
        hold = rules.hold_for(
            amount_nanos,
            is_byok=is_byok,
            include_byok_in_limit=key.include_byok_in_limit,
            limits=limits,
            plugin_nanos=plugin_nanos,
        )
        s = keys.shard(key.org_id)
        names = [
            keys.org(key.org_id),
            keys.key(key.org_id, key.key_hash),
            keys.usage_window(key.org_id, key.key_hash, p.for_reset(key.limit_reset)),
            keys.free_minute(key.org_id, key.key_hash),
            keys.free_day(key.org_id, p.day),
            keys.reservations(s),
            keys.deadlines(s),
        ]
        args = [
            reservation_id,
            hold.org,
            hold.key,
            int(is_free),
            -1 if key.limit_nanos is None else key.limit_nanos,
            int(key.include_byok_in_limit),
            int(at) + limits.reservation_ttl_s,
            limits.free_rpm,
            limits.free_rpd_no_credits,
            limits.free_rpd_with_credits,
            limits.free_credits_threshold_nanos,
            keys.FREE_WINDOW_MS,
            keys.FREE_DAY_TTL,
            key.org_id,
            key.key_hash,
            int(at * 1000),
        ]
        admit = self._script("admit")
        result = await admit(keys=names, args=args)
        if result[0] == b"cold":
            # Only after a Redis restart or for a never-seen org/key: load the mirror, then retry once.
            await sync_to_async(self._warm)(key, int(result[1]), at)
            result = await admit(keys=names, args=args)
        elif result[0] in (b"credits", b"negative") and await self._may_resync(key.org_id):
            # A missed ledger hook (Redis briefly down at a top-up's commit) must not refuse forever:
            # a refusal re-reads the ledger, at most once per org every few seconds.
            await sync_to_async(self.org_balance_sync)(key.org_id)
            result = await admit(keys=names, args=args)
        verdict = rules.Verdict(result[0].decode(), int(result[1]), int(result[2]) if len(result) > 2 else 0)
        if verdict.name == "ok":
            if not is_free:
                self.leases.track(reservation_id)
            return ADMITTED
        if verdict.name == "cold":
            raise RuntimeError("gate mirror could not be loaded")
        return rules.refusal(verdict, hold.org, at, limits)

    async def _may_resync(self, org_id: int) -> bool:
        client = async_redis(self.url)
        return bool(await client.set(keys.resync(org_id), 1, nx=True, ex=REFUSAL_RESYNC_SECONDS))

    def _warm(self, key: KeyState, mask: int, at: float) -> None:
        if mask & 1:
            self.org_balance_sync(key.org_id)
        if mask & 2:
            self._load_key(key.key_id, key.key_hash, key.org_id, at)

    def _load_key(self, key_id: int, key_hash: str, org_id: int, at: float) -> None:
        usage = key_settled_usage(key_id, UsageWindows.at(datetime.fromtimestamp(at, UTC)))
        self.key_mirror_load(org_id, key_hash, usage, at)

    def key_mirror_load(self, org_id: int, key_hash: str, usage: dict[str, int], at: float) -> None:
        """Seed a key's usage windows once (`usage` as billing.selectors.key_settled_usage returns it)."""
        args = [usage[f"{kind}_{w}"] for w in ("all", "d", "w", "m") for kind in ("u", "b")]
        windows = keys.usage_windows(org_id, key_hash, rules.Periods.at(at).windows)
        self._sync_scripts["load_key"](keys=[keys.key(org_id, key_hash), *windows], args=[*args, keys.WINDOW_TTL])

    async def finish(self, *, reservation_id: str, key: KeyState, event: UsageEvent | None) -> int:
        p = periods_at(event.created_at if event else rules.now())
        org_id = event.organization_id if event else key.org_id
        s = keys.shard(org_id)
        names = [
            keys.finished(org_id, reservation_id),
            keys.org(org_id),
            *keys.usage_windows(org_id, key.key_hash, p.windows),
            keys.byok_month(org_id, p.month),
            keys.stream(s),
            keys.reservations(s),
            keys.deadlines(s),
        ]
        limits = rules.Limits.current()
        terms = rules.charge_for(event, limits) if event else rules.Charge(False, 0, 0, 0, 0)
        args = [
            reservation_id,
            int(event is not None),
            int(terms.counted),
            terms.quota,
            terms.within,
            terms.beyond,
            terms.byok_usage,
            CHARGE_FIELD,
            EVENT_FIELD,
            encode(event) if event else b"",
            keys.WINDOW_TTL,
            # finish() is retried within a request's lifetime; twice the hold's TTL is ample.
            2 * limits.reservation_ttl_s,
            keys.BYOK_COUNTER_TTL,
            keys.org_prefix(s),
            keys.key_prefix(s),
        ]
        self.leases.untrack(reservation_id)
        charged = int(await self._script("finish")(keys=names, args=args))
        if event is not None:
            event.cost_nanos = charged
        return charged

    async def _renew_leases(self, rids: list[str], lease_s: float) -> int:
        """One ZADD XX per shard: only holds still open move (a finished or expired one is not brought
        back, and XX adds no id to a shard it was not admitted in, so no per-hold shard is tracked)."""
        deadline = rules.now() + lease_s
        members = dict.fromkeys(rids, deadline)
        # One pipeline, not concurrent commands: on a cluster it sends one batch per node, where
        # concurrent commands racing to open the same node's first connection failed inside redis-py
        # (its connection's writer was gone mid-handshake: tests/test_redis_cluster.py, 1 run in 6).
        pipe = async_redis(self.url).pipeline(transaction=False)
        for s in range(keys.shards()):
            pipe.zadd(keys.deadlines(s), members, xx=True, ch=True)
        return sum(int(c or 0) for c in await pipe.execute())

    def queue(self) -> UsageQueue:
        """The settlement side of the stream finish() appends to, as this process's consumer."""
        return RedisStreamQueue(self.sync, settings.SETTLEMENT_CONSUMER)

    # --- sync side: views, workers, ledger hooks ------------------------------------------------

    def org_balance_sync(self, org_id: int) -> None:
        self.org_mirror_load(org_id, org_ledger_snapshot(org_id))

    def org_mirror_load(self, org_id: int, s: OrgLedgerSnapshot) -> None:
        args = [s.credits_in_nanos, s.version, s.purchased_nanos, s.settled_usage_nanos]
        self._sync_scripts["load_org"](keys=[keys.org(org_id)], args=args)

    def org_credit_view(self, org_id: int) -> dict[str, int]:
        if not self.sync.hexists(keys.org(org_id), "ld"):
            self.org_balance_sync(org_id)
        raw = self.sync.hmget(keys.org(org_id), "cin", "spent", "res", "uns", "bought")
        names = ("credits", "spent", "reserved", "unsettled", "purchased")
        return {name: int(value or 0) for name, value in zip(names, raw, strict=True)}

    def key_usage(self, key_id: int, key_hash: str, org_id: int) -> dict[str, int]:
        at = rules.now()
        if not self.sync.hexists(keys.key(org_id, key_hash), "ld"):
            self._load_key(key_id, key_hash, org_id, at)
        pipe = self.sync.pipeline(transaction=False)
        for name in keys.usage_windows(org_id, key_hash, rules.Periods.at(at).windows):
            pipe.hmget(name, "u", "b")
        rows = pipe.execute()
        return rules.key_usage_dict([(int(u or 0), int(b or 0)) for u, b in rows])

    def free_requests_today(self, org_id: int) -> int:
        return int(self.sync.get(keys.free_day(org_id, rules.Periods.at(rules.now()).day)) or 0)

    def usage_counters(self) -> dict[int, tuple[int, int]]:
        """{org id: (spent, unsettled)} of every organization the gate has loaded (for reconciliation)."""
        # On Redis Cluster scan_iter walks every primary.
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in self.sync.scan_iter(keys.org_pattern(), 500)]
        pipe = self.sync.pipeline(transaction=False)
        for name in names:
            pipe.hmget(name, "ld", "spent", "uns")
        out = {}
        for name, (loaded, spent, uns) in zip(names, pipe.execute(), strict=True):
            if loaded:
                out[keys.org_id_of(name)] = (int(spent or 0), int(uns or 0))
        return out

    def queued_charges(self) -> dict[int, int]:
        """{org id: charges waiting in the shards' usage streams}, read in pages (for reconciliation)."""
        totals: dict[int, int] = {}
        for stream in keys.streams():
            start = "-"
            while True:
                page: Any = self.sync.xrange(stream, min=start, max="+", count=1000)
                for msg_id, fields in page:
                    item = decode(msg_id, fields)
                    org = item.event.organization_id
                    totals[org] = totals.get(org, 0) + item.charge_nanos
                if len(page) < 1000:
                    break
                start = "(" + page[-1][0].decode()
        return totals

    def expire_reservations(self, now: float | None = None, limit: int = 1000) -> int:
        """Release up to `limit` lapsed holds per shard; returns how many were released."""
        expire, at, total = self._sync_scripts["expire"], now or rules.now(), 0
        for s in range(keys.shards()):
            args: list[float | int | str] = [at, limit, keys.org_prefix(s), keys.key_prefix(s)]
            total += int(expire(keys=[keys.deadlines(s), keys.reservations(s)], args=args))
        return total
