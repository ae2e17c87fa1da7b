"""Holds are leases: a running request's hold is renewed while it runs, a dead process's lapses.

admit() gives a hold a deadline `RESERVATION_TTL_SECONDS` (the lease) ahead; housekeeping releases
holds past their deadline. Each gateway process keeps the ids of its own open holds here, and one
task per event loop pushes all their deadlines forward every `lease / RENEWALS_PER_LEASE` seconds in
one round trip. So a long stream keeps its credit held for as long as it runs (issue 11, case 4),
and the holds of a process that died stop being renewed and are released within about one lease
plus a housekeeping interval (case 5), instead of a fixed 15 minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable

log = logging.getLogger("billing.gate")

# Renew this many times per lease, so a missed renewal or two (a slow Redis) does not lose a hold.
RENEWALS_PER_LEASE = 4
# A hold whose request never called finish() (a bug, not a crash) must not be renewed forever: no
# request runs this long, so past it the hold is left to lapse like a dead process's.
MAX_RENEWED_SECONDS = 6 * 3600

Renew = Callable[[list[str], float], Awaitable[int]]


class LeaseKeeper:
    """The open holds of this process and the loop task that renews them (`renew(ids, lease_s)`)."""

    def __init__(self, renew: Renew, lease_s: Callable[[], float]) -> None:
        self._renew = renew
        self._lease_s = lease_s
        self._live: dict[str, float] = {}  # reservation id -> when it was admitted (monotonic)
        self._tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    def track(self, rid: str) -> None:
        self._live[rid] = time.monotonic()
        loop = asyncio.get_running_loop()
        task = self._tasks.get(loop)
        if task is None or task.done():
            self._tasks[loop] = loop.create_task(self._run(), name="hold-lease-renewer")

    def untrack(self, rid: str) -> None:
        self._live.pop(rid, None)

    @property
    def live(self) -> list[str]:
        return list(self._live)

    async def renew_now(self) -> int:
        """Push every open hold's deadline one lease ahead; returns how many were still held."""
        too_old = time.monotonic() - MAX_RENEWED_SECONDS
        for rid in [r for r, since in self._live.items() if since < too_old]:
            log.error("hold %s was never finished; no longer renewing it", rid)
            del self._live[rid]
        rids = self.live
        if not rids:
            return 0
        return await self._renew(rids, self._lease_s())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(max(self._lease_s() / RENEWALS_PER_LEASE, 0.05))
            try:
                await self.renew_now()
            except Exception:
                # A Redis blip: the next renewal (a quarter lease later) tries again.
                log.warning("renewing %d hold leases failed", len(self._live), exc_info=True)
