"""What the gateway hands the credit gate and what it gets back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from billing.usage import UsageEvent


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
        self,
        *,
        reservation_id: str,
        key: KeyState,
        amount_nanos: int,
        is_free: bool,
        is_byok: bool,
        plugin_nanos: int = 0,
    ) -> Admission: ...

    async def finish(self, *, reservation_id: str, key: KeyState, event: UsageEvent | None) -> int: ...
