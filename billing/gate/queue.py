"""The usage queue: finished requests on their way to settlement, with the charge the gate decided.

One contract, two homes. With Redis it is one Stream per gate shard (`keys.stream(s)`, consumer
group `GROUP` on each) that lua/finish.lua appends to in the same atomic step as the charge, with the
fields `CHARGE_FIELD` and `EVENT_FIELD`; `RedisStreamQueue` reads every shard's stream for the
settlement worker (a shard's stream shares its organizations' hash slot, so on Redis Cluster the
charge, the append and the ack each stay one single-slot script). The embedded gate keeps a
`MemoryQueue`. Settlement sees only `UsageQueue`: the gate hands out the matching one (`queue()`).

The ack lowers the organization's unsettled counter once per generation (a guard key per generation
id), so a retried ack after a crash between commit and ack cannot subtract twice.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from billing.gate import keys, scripts
from billing.usage import UsageEvent
from common.redis import Redis, ResponseError, script

GROUP = "settle"
CHARGE_FIELD = "c"
EVENT_FIELD = "e"
# Messages another consumer claimed but has not acked for this long belong to a dead worker.
ORPHAN_IDLE_MS = 60_000
# Guards a retried or duplicate ack (crash between commit and ack, or a slow worker acking after a peer
# re-claimed its orphan): both happen within a few orphan timeouts, so ten minutes is ample, and one
# key per generation never lives for a day (issue 11, case 7: ~70 B x req/s x TTL of Redis memory).
SETTLED_GUARD_TTL = 10 * ORPHAN_IDLE_MS // 1000


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A usage event waiting for settlement, with the charge the gate decided at finish()."""

    msg_id: str
    charge_nanos: int
    event: UsageEvent


class UsageQueue(Protocol):
    def claim(self, count: int) -> list[QueuedEvent]: ...

    def ack(self, items: list[QueuedEvent]) -> None: ...

    def drop(self, items: list[QueuedEvent]) -> None:
        """Take dead-lettered events off the queue WITHOUT settling them: their charge stays unsettled
        in the gate until `ack` (after a successful retry) lowers it, once per generation."""
        ...


def encode(event: UsageEvent) -> bytes:
    """The EVENT_FIELD payload finish() appends (the charge goes in CHARGE_FIELD, decided in the script)."""
    return event.to_json()


def decode(msg_id: bytes | str, fields: dict[bytes, bytes]) -> QueuedEvent:
    event = UsageEvent.from_json(fields[EVENT_FIELD.encode()])
    charge = int(fields[CHARGE_FIELD.encode()])
    event.cost_nanos = charge
    return QueuedEvent(
        msg_id=msg_id.decode() if isinstance(msg_id, bytes) else msg_id, charge_nanos=charge, event=event
    )


class RedisStreamQueue:
    """Reliable delivery over the shards' Redis Streams: pending entries survive a killed worker.

    A claim visits the shards round-robin from where the previous claim stopped, so a busy shard
    cannot starve the others; an ack is one script per shard in the batch.
    """

    def __init__(self, client: Redis, consumer: str) -> None:
        self.client = client
        self.consumer = consumer
        self._ack = script(scripts.source("settle_ack"), client)
        self._groups_ready: set[str] = set()
        self._next = 0

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups_ready:
            return
        try:
            # From id 0: events queued before the first worker ever started are settled too.
            self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(stream)

    def claim(self, count: int) -> list[QueuedEvent]:
        streams = keys.streams()
        start, self._next = self._next % len(streams), self._next + 1
        raw: list[Any] = []
        for stream in streams[start:] + streams[:start]:
            if len(raw) >= count:
                break
            raw += self._claim_from(stream, count - len(raw))
        return [decode(msg_id, fields) for msg_id, fields in raw]

    def _claim_from(self, stream: str, count: int) -> list[Any]:
        self._ensure_group(stream)
        # 1. Our own unacked messages first: what we held when we were killed.
        raw = self._read(stream, "0", count)
        if len(raw) < count:
            # 2. Messages a dead consumer (another host or name) left pending.
            found: Any = self.client.xautoclaim(stream, GROUP, self.consumer, ORPHAN_IDLE_MS, "0-0", count - len(raw))
            raw += [m for m in found[1] if m[1]]
        if len(raw) < count:
            raw += self._read(stream, ">", count - len(raw))
        return raw

    def _read(self, stream: str, start: str, count: int) -> list[Any]:
        reply: Any = self.client.xreadgroup(GROUP, self.consumer, {stream: start}, count=count)
        return [m for m in reply[0][1] if m[1]] if reply else []

    def ack(self, items: list[QueuedEvent]) -> None:
        for s, batch in _by_shard(items).items():
            args: list[Any] = [GROUP, SETTLED_GUARD_TTL, keys.settled_prefix(s), keys.org_prefix(s)]
            for item in batch:
                args += [item.msg_id, item.event.generation_id, item.event.organization_id, item.charge_nanos]
            self._ack(keys=[keys.stream(s)], args=args)

    def drop(self, items: list[QueuedEvent]) -> None:
        for s, batch in _by_shard(items).items():
            ids = [item.msg_id for item in batch]
            # One slot per shard, so MULTI works on Redis Cluster too.
            pipe = self.client.pipeline(transaction=True)
            pipe.xack(keys.stream(s), GROUP, *ids)
            pipe.xdel(keys.stream(s), *ids)
            pipe.execute()


def _by_shard(items: list[QueuedEvent]) -> dict[int, list[QueuedEvent]]:
    """An event's message lives in its organization's shard stream (finish.lua put it there)."""
    out: dict[int, list[QueuedEvent]] = {}
    for item in items:
        out.setdefault(keys.shard(item.event.organization_id), []).append(item)
    return out


class MemoryQueue:
    """The embedded gate's queue, in one process: the stream's claim/ack contract over a deque.

    `on_settled(org_id, charge)` runs once per generation id when it is acked (the embedded gate
    lowers its unsettled counter there); it runs outside this queue's lock.
    """

    def __init__(self, on_settled: Callable[[int, int], None], *, max_ids: int) -> None:
        self._on_settled = on_settled
        self._max_ids = max_ids
        self._lock = threading.Lock()
        self._queued: deque[QueuedEvent] = deque()
        self._pending: dict[str, QueuedEvent] = {}
        self._settled: dict[str, None] = {}
        self._seq = 0

    def put(self, charge_nanos: int, event: UsageEvent) -> None:
        with self._lock:
            self._seq += 1
            self._queued.append(QueuedEvent(msg_id=str(self._seq), charge_nanos=charge_nanos, event=event))

    def claim(self, count: int) -> list[QueuedEvent]:
        with self._lock:
            if not self._pending:
                while self._queued and len(self._pending) < count:
                    item = self._queued.popleft()
                    self._pending[item.msg_id] = item
            return list(self._pending.values())[:count]

    def ack(self, items: list[QueuedEvent]) -> None:
        fresh = []
        with self._lock:
            for item in items:
                self._pending.pop(item.msg_id, None)
                if item.event.generation_id not in self._settled:
                    self._settled[item.event.generation_id] = None
                    fresh.append(item)
            if len(self._settled) > self._max_ids:
                # Bounded memory: a generation this old is never acked again.
                for old in list(self._settled)[: len(self._settled) // 2]:
                    del self._settled[old]
        for item in fresh:
            self._on_settled(item.event.organization_id, item.charge_nanos)

    def waiting(self) -> list[QueuedEvent]:
        """Queued and claimed-but-unacked events (for reconciliation)."""
        with self._lock:
            return [*self._queued, *self._pending.values()]

    def drop(self, items: list[QueuedEvent]) -> None:
        with self._lock:
            for item in items:
                self._pending.pop(item.msg_id, None)
