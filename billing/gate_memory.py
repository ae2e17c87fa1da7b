"""The embedded credit gate (no Redis): the Lua scripts' rules over dicts, for one process only.

`make run` serves everything from one process on SQLite, so holds, counters and the usage queue can
live in memory; `billing.gate.get_gate()` picks this gate when REDIS_URL is empty.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings

from billing.gate import (
    ADMITTED,
    EMBEDDED_RESYNC_SECONDS,
    MEMORY_GATE_MAX_IDS,
    Admission,
    KeyState,
    Periods,
    QueuedEvent,
    _byok_fee,
    _now,
    _refusal,
    _threshold_nanos,
    _usage_dict,
    _windows,
)
from billing.selectors import UsageWindows, key_settled_usage, org_ledger_snapshot
from billing.usage import UsageEvent

log = logging.getLogger("billing.gate")


@dataclass(slots=True)
class _OrgMirror:
    loaded: bool = False
    credits_in: int = 0
    version: int = -1
    purchased: int = 0
    spent: int = 0
    unsettled: int = 0
    reserved: int = 0
    synced_at: float = 0.0

    def stale(self, now: float) -> bool:
        # Grants made by another process (a manage.py command) reach only this process's DB, not
        # its memory, so the embedded gate re-reads the ledger every few seconds.
        return not self.loaded or now - self.synced_at > EMBEDDED_RESYNC_SECONDS


class MemoryGate:
    """The embedded gate (no Redis): the Lua scripts' rules over dicts, for one process only.

    It is also the usage queue; with `autosettle` each finished event is settled by the same
    service the Celery worker runs, in a thread, so `make run` needs no worker.
    """

    def __init__(self, *, autosettle: bool = True) -> None:
        self.autosettle = autosettle
        self._lock = threading.Lock()
        self._settle_lock = threading.Lock()
        self._orgs: defaultdict[int, _OrgMirror] = defaultdict(_OrgMirror)
        self._keys_loaded: set[str] = set()
        self._key_res: defaultdict[str, int] = defaultdict(int)
        self._win: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._holds: dict[str, tuple[int, str, int, int, float]] = {}
        self._finished: dict[str, int] = {}
        self._queue: deque[QueuedEvent] = deque()
        self._pending: dict[str, QueuedEvent] = {}
        self._settled: dict[str, None] = {}
        self._seq = 0

    async def admit(
        self, *, reservation_id: str, key: KeyState, amount_nanos: int, is_free: bool, is_byok: bool
    ) -> Admission:
        now = _now()
        mask = int(self._orgs[key.org_id].stale(now)) | (2 * int(key.key_hash not in self._keys_loaded))
        if mask:
            await sync_to_async(self._warm)(key, mask, now)
        hold = _byok_fee(amount_nanos) if is_byok else amount_nanos
        with self._lock:
            verdict, value, extra = self._decide(reservation_id, key, amount_nanos, hold, is_free, is_byok, now)
        return ADMITTED if verdict == "ok" else _refusal(verdict, value, extra, hold, now)

    def _decide(
        self, rid: str, key: KeyState, amount: int, hold: int, is_free: bool, is_byok: bool, now: float
    ) -> tuple[str, int, int]:
        org, p = self._orgs[key.org_id], Periods.at(now)
        if rid in self._holds:
            return "ok", 0, 0
        balance = org.credits_in - org.spent
        if balance < 0:
            return "negative", balance, 0
        if is_free:
            minute, day = f"fm:{key.key_hash}:{p.minute}", f"fd:{key.org_id}:{p.day}"
            if self._counts[minute] >= settings.FREE_MODEL_RPM:
                return "rpm", settings.FREE_MODEL_RPM, 0
            high = org.purchased >= _threshold_nanos()
            rpd = settings.FREE_MODEL_RPD_WITH_CREDITS if high else settings.FREE_MODEL_RPD_NO_CREDITS
            if self._counts[day] >= rpd:
                return "rpd", rpd, int(high)
            self._counts[minute] += 1
            self._counts[day] += 1
            return "ok", 0, 0
        hold_key = hold + (amount if is_byok and key.include_byok_in_limit else 0)
        if balance - org.reserved < hold:
            return "credits", balance - org.reserved, 0
        if key.limit_nanos is not None:
            u, b = self._win[f"gate:ku:{key.key_hash}:{p.for_reset(key.limit_reset)}"]
            used = u + (b if key.include_byok_in_limit else 0) + self._key_res[key.key_hash]
            if used + hold_key > key.limit_nanos:
                return "key_limit", key.limit_nanos - used, 0
        org.reserved += hold
        self._key_res[key.key_hash] += hold_key
        self._holds[rid] = (key.org_id, key.key_hash, hold, hold_key, now + settings.RESERVATION_TTL_SECONDS)
        return "ok", 0, 0

    def _warm(self, key: KeyState, mask: int, now: float) -> None:
        if mask & 1:
            self.org_balance_sync(key.org_id)
        if mask & 2:
            self.key_usage(key.key_id, key.key_hash)

    def _release(self, rid: str) -> None:
        found = self._holds.pop(rid, None)
        if found is not None:
            org_id, key_hash, hold, hold_key, _ = found
            self._orgs[org_id].reserved -= hold
            self._key_res[key_hash] -= hold_key

    async def finish(self, *, reservation_id: str, key: KeyState, event: UsageEvent | None) -> int:
        with self._lock:
            charged = self._finish(reservation_id, key, event)
        if event is not None and self.autosettle:
            asyncio.get_running_loop().run_in_executor(None, self.settle_in_thread)
        return charged

    def _finish(self, rid: str, key: KeyState, event: UsageEvent | None) -> int:
        if rid in self._finished:
            return self._finished[rid]
        self._release(rid)
        if event is None:
            self._finished[rid] = 0
            return 0
        p = Periods.at(event.created_at)
        charge = event.list_cost_nanos
        if event.is_byok:
            byok_key = f"bq:{event.organization_id}:{p.month}"
            self._counts[byok_key] += 1
            within = self._counts[byok_key] <= settings.BYOK_FREE_REQUESTS_PER_MONTH
            charge = 0 if within else _byok_fee(event.list_cost_nanos)
        charge = max(charge, 0) if event.list_cost_nanos > 0 else 0
        org = self._orgs[event.organization_id]
        org.spent += charge
        org.unsettled += charge
        for name in _windows(key.key_hash, p):
            self._win[name][0] += charge
            self._win[name][1] += event.list_cost_nanos if event.is_byok else 0
        event.cost_nanos = charge
        self._seq += 1
        self._queue.append(QueuedEvent(msg_id=str(self._seq), charge_nanos=charge, event=event))
        self._finished[rid] = charge
        self._forget_old()
        return charge

    def _forget_old(self) -> None:
        """Bound the embedded gate's memory: old ids and past minutes' counters are never read again."""
        for ids in (self._finished, self._settled):
            if len(ids) > MEMORY_GATE_MAX_IDS:
                for old in list(ids)[: len(ids) // 2]:
                    del ids[old]
        if len(self._counts) > MEMORY_GATE_MAX_IDS:
            minute = f":{Periods.at(_now()).minute}"
            for name in [n for n in self._counts if n.startswith("fm:") and not n.endswith(minute)]:
                del self._counts[name]

    def settle_in_thread(self) -> None:
        from django.db import connections

        from billing.settlement import settle_pending

        with self._settle_lock:
            try:
                settle_pending(self)
            except Exception:
                log.exception("embedded settlement failed; the events stay queued")
            finally:
                connections.close_all()

    # --- the usage queue (billing.settlement.UsageQueue) ---------------------------------------

    def claim(self, count: int) -> list[QueuedEvent]:
        with self._lock:
            if not self._pending:
                while self._queue and len(self._pending) < count:
                    item = self._queue.popleft()
                    self._pending[item.msg_id] = item
            return list(self._pending.values())[:count]

    def ack(self, items: list[QueuedEvent]) -> None:
        with self._lock:
            for item in items:
                self._pending.pop(item.msg_id, None)
                if item.event.generation_id not in self._settled:
                    self._settled[item.event.generation_id] = None
                    self._orgs[item.event.organization_id].unsettled -= item.charge_nanos

    # --- sync side ------------------------------------------------------------------------------

    def org_balance_sync(self, org_id: int) -> None:
        s = org_ledger_snapshot(org_id)
        with self._lock:
            org = self._orgs[org_id]
            if not org.loaded:
                org.spent += s.settled_usage_nanos
                org.loaded = True
            if s.version > org.version:
                org.credits_in, org.purchased, org.version = s.credits_in_nanos, s.purchased_nanos, s.version
            org.synced_at = _now()

    def org_credit_view(self, org_id: int) -> dict[str, int]:
        if self._orgs[org_id].stale(_now()):
            self.org_balance_sync(org_id)
        o = self._orgs[org_id]
        return {
            "credits": o.credits_in,
            "spent": o.spent,
            "reserved": o.reserved,
            "unsettled": o.unsettled,
            "purchased": o.purchased,
        }

    def key_usage(self, key_id: int, key_hash: str) -> dict[str, int]:
        now = _now()
        names = _windows(key_hash, Periods.at(now))
        if key_hash not in self._keys_loaded:
            u = key_settled_usage(key_id, UsageWindows.at(datetime.fromtimestamp(now, UTC)))
            with self._lock:
                if key_hash not in self._keys_loaded:
                    for name, w in zip(names, ("all", "d", "w", "m"), strict=True):
                        self._win[name][0] += u[f"u_{w}"]
                        self._win[name][1] += u[f"b_{w}"]
                    self._keys_loaded.add(key_hash)
        return _usage_dict([(self._win[n][0], self._win[n][1]) for n in names])

    def free_requests_today(self, org_id: int) -> int:
        return self._counts[f"fd:{org_id}:{Periods.at(_now()).day}"]

    def expire_reservations(self, now: float | None = None, limit: int = 1000) -> int:
        cutoff = now or _now()
        with self._lock:
            expired = [rid for rid, hold in self._holds.items() if hold[4] <= cutoff][:limit]
            for rid in expired:
                self._release(rid)
        return len(expired)
