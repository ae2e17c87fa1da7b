"""The embedded credit gate (no Redis): rules.py's decisions over dicts, for one process only.

`make run` serves everything from one process on SQLite, so holds, counters and the usage queue can
live in memory; `billing.gate.get_gate()` picks this gate when REDIS_URL is empty.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asgiref.sync import sync_to_async
from django.db import connections

from billing.gate import keys, rules
from billing.gate.contract import ADMITTED, Admission, KeyState
from billing.gate.lease import LeaseKeeper
from billing.gate.queue import MemoryQueue, UsageQueue
from billing.selectors import OrgLedgerSnapshot, UsageWindows, key_settled_usage, org_ledger_snapshot
from billing.usage import UsageEvent

log = logging.getLogger("billing.gate")

# Grants made by another process (a manage.py command) reach only this process's DB, not its
# memory, so the embedded gate re-reads the ledger every few seconds.
EMBEDDED_RESYNC_SECONDS = 5.0
MEMORY_GATE_MAX_IDS = 200_000  # the embedded gate forgets the oldest finished/settled ids beyond this

Settle = Callable[[UsageQueue], object]


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

    def stale(self, at: float) -> bool:
        return not self.loaded or at - self.synced_at > EMBEDDED_RESYNC_SECONDS


@dataclass(frozen=True, slots=True)
class _Hold:
    org_id: int
    key_hash: str
    hold: rules.Hold
    deadline: float


class MemoryGate:
    """The embedded gate. With `settle` (billing.gate's factory passes settlement's service) each
    finished event is settled in a thread by the same code the Celery worker runs, so `make run`
    needs no worker; without it, events wait in `queue()` for whoever settles them."""

    def __init__(self, *, settle: Settle | None = None, counters_file: Path | None = None) -> None:
        self._settle = settle
        # The free-model daily and BYOK monthly counters exist nowhere else: with a file they survive
        # a restart of `make run` (saved after each settlement, at most once a second).
        self._counters_file = counters_file
        self._counters_saved_at = 0.0
        self._lock = threading.Lock()
        self._settle_lock = threading.Lock()
        self._orgs: defaultdict[int, _OrgMirror] = defaultdict(_OrgMirror)
        self._keys_loaded: set[str] = set()
        self._key_res: defaultdict[str, int] = defaultdict(int)
        self._win: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self._counts: defaultdict[str, int] = defaultdict(int)
        self._recent: defaultdict[str, deque[int]] = defaultdict(deque)  # free requests' ms, per key (sliding)
        self._holds: dict[str, _Hold] = {}
        self._finished: dict[str, int] = {}
        self._queue = MemoryQueue(self._settled, max_ids=MEMORY_GATE_MAX_IDS)
        self.leases = LeaseKeeper(self._renew_leases, lambda: rules.Limits.current().reservation_ttl_s)
        self._counts.update(self._load_counters())

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
        mask = int(self._orgs[key.org_id].stale(at)) | (2 * int(key.key_hash not in self._keys_loaded))
        if mask:
            await sync_to_async(self._warm)(key, mask, at)
        limits = rules.Limits.current()
        hold = rules.hold_for(
            amount_nanos,
            is_byok=is_byok,
            include_byok_in_limit=key.include_byok_in_limit,
            limits=limits,
            plugin_nanos=plugin_nanos,
        )
        with self._lock:
            verdict = self._decide(reservation_id, key, hold, is_free, at, limits)
        if verdict.name != "ok":
            return rules.refusal(verdict, hold.org, at, limits)
        if not is_free:
            self.leases.track(reservation_id)
        return ADMITTED

    def _decide(
        self, rid: str, key: KeyState, hold: rules.Hold, is_free: bool, at: float, limits: rules.Limits
    ) -> rules.Verdict:
        if rid in self._holds:
            return rules.OK
        org, p = self._orgs[key.org_id], rules.Periods.at(at)
        day, now_ms = keys.free_day(key.org_id, p.day), int(at * 1000)
        recent = self._recent[keys.free_minute(key.org_id, key.key_hash)]
        while recent and recent[0] <= now_ms - keys.FREE_WINDOW_MS:
            recent.popleft()
        u, b = self._win[keys.usage_window(key.org_id, key.key_hash, p.for_reset(key.limit_reset))]
        verdict = rules.admit_verdict(
            balance=org.credits_in - org.spent,
            reserved=org.reserved,
            purchased=org.purchased,
            is_free=is_free,
            hold=hold,
            free_used_minute=len(recent),
            free_used_day=self._counts[day],
            limit_nanos=key.limit_nanos,
            key_used=u + (b if key.include_byok_in_limit else 0),
            key_reserved=self._key_res[key.key_hash],
            limits=limits,
        )
        if verdict.name == "rpm":
            return verdict._replace(extra=(recent[0] if recent else now_ms) + keys.FREE_WINDOW_MS)
        if verdict.name != "ok":
            return verdict
        if is_free:
            recent.append(now_ms)
            self._counts[day] += 1
        else:
            org.reserved += hold.org
            self._key_res[key.key_hash] += hold.key
            self._holds[rid] = _Hold(key.org_id, key.key_hash, hold, at + limits.reservation_ttl_s)
        return verdict

    def _warm(self, key: KeyState, mask: int, at: float) -> None:
        if mask & 1:
            self.org_balance_sync(key.org_id)
        if mask & 2:
            self.key_usage(key.key_id, key.key_hash, key.org_id)

    def _release(self, rid: str) -> int:
        """Drop the hold; returns the organization hold it released, or -1 (lua/release.lua's contract)."""
        found = self._holds.pop(rid, None)
        if found is None:
            return -1
        self._orgs[found.org_id].reserved -= found.hold.org
        self._key_res[found.key_hash] -= found.hold.key
        return found.hold.org

    async def finish(self, *, reservation_id: str, key: KeyState, event: UsageEvent | None) -> int:
        self.leases.untrack(reservation_id)
        with self._lock:
            charged = self._finish(reservation_id, key, event)
        if event is not None and self._settle is not None:
            asyncio.get_running_loop().run_in_executor(None, self.settle_in_thread)
        return charged

    def _finish(self, rid: str, key: KeyState, event: UsageEvent | None) -> int:
        if rid in self._finished:
            return self._finished[rid]
        held = self._release(rid)
        if event is None:
            self._finished[rid] = 0
            return 0
        p = rules.Periods.at(event.created_at)
        terms = rules.charge_for(event, rules.Limits.current())
        count = 0
        if terms.counted:
            byok_counter = keys.byok_month(event.organization_id, p.month)
            self._counts[byok_counter] += 1
            count = self._counts[byok_counter]
        charge = terms.amount(count, held)
        org = self._orgs[event.organization_id]
        org.spent += charge
        org.unsettled += charge
        for name in keys.usage_windows(key.org_id, key.key_hash, p.windows):
            self._win[name][0] += charge
            self._win[name][1] += terms.byok_usage if terms.counted else 0
        event.cost_nanos = charge
        self._queue.put(charge, event)
        self._finished[rid] = charge
        self._forget_old()
        return charge

    def _forget_old(self) -> None:
        """Bound the embedded gate's memory: old ids and past minutes' counters are never read again."""
        if len(self._finished) > MEMORY_GATE_MAX_IDS:
            for old in list(self._finished)[: len(self._finished) // 2]:
                del self._finished[old]
        if len(self._recent) > MEMORY_GATE_MAX_IDS:
            cutoff = int(rules.now() * 1000) - keys.FREE_WINDOW_MS
            for name in [n for n, times in self._recent.items() if not times or times[-1] <= cutoff]:
                del self._recent[name]

    async def _renew_leases(self, rids: list[str], lease_s: float) -> int:
        deadline = rules.now() + lease_s
        with self._lock:
            held = [rid for rid in rids if rid in self._holds]
            for rid in held:
                self._holds[rid] = dataclasses.replace(self._holds[rid], deadline=deadline)
        return len(held)

    def settle_in_thread(self) -> None:
        if self._settle is None:
            return
        with self._settle_lock:
            try:
                self._settle(self._queue)
            except Exception:
                log.exception("embedded settlement failed; the events stay queued")
            finally:
                connections.close_all()
            self.save_counters()

    def _load_counters(self) -> dict[str, int]:
        """This period's counters from the file (other days' and months' are dropped)."""
        if self._counters_file is None or not self._counters_file.exists():
            return {}
        try:
            saved = json.loads(self._counters_file.read_text())
        except (OSError, ValueError):
            log.warning("ignoring unreadable gate counters in %s", self._counters_file)
            return {}
        p = rules.Periods.at(rules.now())
        current = {name for name in saved if name.endswith((f":{p.day}", f":{p.month}"))}
        return {name: int(saved[name]) for name in current if _is_counter(name)}

    def save_counters(self, *, force: bool = False) -> None:
        at = rules.now()
        if self._counters_file is None or (not force and at - self._counters_saved_at < 1.0):
            return
        with self._lock:
            snapshot = {k: v for k, v in self._counts.items() if _is_counter(k)}
        self._counters_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._counters_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot))
        os.replace(tmp, self._counters_file)  # atomic: a crash mid-write leaves the previous file
        self._counters_saved_at = at

    def queue(self) -> UsageQueue:
        return self._queue

    def _settled(self, org_id: int, charge_nanos: int) -> None:
        with self._lock:
            self._orgs[org_id].unsettled -= charge_nanos

    # --- sync side ------------------------------------------------------------------------------

    def org_balance_sync(self, org_id: int) -> None:
        self.org_mirror_load(org_id, org_ledger_snapshot(org_id))

    def org_mirror_load(self, org_id: int, s: OrgLedgerSnapshot) -> None:
        with self._lock:
            org = self._orgs[org_id]
            if not org.loaded:
                org.spent += s.settled_usage_nanos
                org.loaded = True
            if s.version > org.version:
                org.credits_in, org.purchased, org.version = s.credits_in_nanos, s.purchased_nanos, s.version
            org.synced_at = rules.now()

    def org_credit_view(self, org_id: int) -> dict[str, int]:
        if self._orgs[org_id].stale(rules.now()):
            self.org_balance_sync(org_id)
        o = self._orgs[org_id]
        return {
            "credits": o.credits_in,
            "spent": o.spent,
            "reserved": o.reserved,
            "unsettled": o.unsettled,
            "purchased": o.purchased,
        }

    def key_usage(self, key_id: int, key_hash: str, org_id: int) -> dict[str, int]:
        at = rules.now()
        names = keys.usage_windows(org_id, key_hash, rules.Periods.at(at).windows)
        if key_hash not in self._keys_loaded:
            u = key_settled_usage(key_id, UsageWindows.at(datetime.fromtimestamp(at, UTC)))
            with self._lock:
                if key_hash not in self._keys_loaded:
                    for name, w in zip(names, ("all", "d", "w", "m"), strict=True):
                        self._win[name][0] += u[f"u_{w}"]
                        self._win[name][1] += u[f"b_{w}"]
                    self._keys_loaded.add(key_hash)
        return rules.key_usage_dict([(self._win[n][0], self._win[n][1]) for n in names])

    def free_requests_today(self, org_id: int) -> int:
        return self._counts[keys.free_day(org_id, rules.Periods.at(rules.now()).day)]

    def usage_counters(self) -> dict[int, tuple[int, int]]:
        with self._lock:
            return {org_id: (o.spent, o.unsettled) for org_id, o in self._orgs.items() if o.loaded}

    def queued_charges(self) -> dict[int, int]:
        totals: dict[int, int] = {}
        for item in self._queue.waiting():
            org = item.event.organization_id
            totals[org] = totals.get(org, 0) + item.charge_nanos
        return totals

    def expire_reservations(self, now: float | None = None, limit: int = 1000) -> int:
        cutoff = now or rules.now()
        with self._lock:
            expired = [rid for rid, hold in self._holds.items() if hold.deadline <= cutoff][:limit]
            for rid in expired:
                self._release(rid)
        return len(expired)


def _is_counter(name: str) -> bool:
    """A daily free-model or monthly BYOK counter (the ones saved across restarts)."""
    return name.startswith("gate:") and any(marker in name for marker in keys.COUNTER_MARKERS)
