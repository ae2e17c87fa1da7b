"""Helpers for the gate, ledger and settlement tests: a key's gate state, usage events, admit/finish."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync

from billing.gate import Admission, KeyState, MemoryGate, RedisGate
from billing.usage import UsageEvent
from organizations.services import IssuedKey

Gate = RedisGate | MemoryGate


def run(fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
    # async_to_sync keeps the gate's cold-load DB reads on this thread, inside the test transaction.
    return async_to_sync(fn)(**kwargs)


def key_state(issued: IssuedKey, **overrides: Any) -> KeyState:
    k = issued.api_key
    fields: dict[str, Any] = {
        "key_id": k.pk,
        "key_hash": k.hash,
        "org_id": k.organization_id,
        "limit_nanos": k.limit_nanos,
        "limit_reset": k.limit_reset,
        "include_byok_in_limit": k.include_byok_in_limit,
        "user_id": None,
    }
    fields.update(overrides)
    return KeyState(**fields)


def event(key: KeyState, list_cost: int, *, is_byok: bool = False) -> UsageEvent:
    return UsageEvent(
        generation_id=f"gen-{uuid.uuid4().hex}",
        organization_id=key.org_id,
        api_key_id=key.key_id,
        key_hash=key.key_hash,
        user_id=None,
        model="openai/gpt-4o",
        provider_slug="openai",
        provider_name="OpenAI",
        endpoint_tag="openai",
        created_at=time.time(),
        list_cost_nanos=list_cost,
        is_byok=is_byok,
    )


def admit(gate: Gate, key: KeyState, amount: int, **kw: Any) -> Admission:
    rid = kw.pop("rid", uuid.uuid4().hex)
    kw.setdefault("is_free", False)
    kw.setdefault("is_byok", False)
    admission: Admission = run(gate.admit, reservation_id=rid, key=key, amount_nanos=amount, **kw)
    return admission


def finished(gate: Gate, issued: IssuedKey, costs: list[int], *, is_byok: bool = False) -> list[str]:
    """Admit and finish one request per cost; returns their generation ids."""
    key = key_state(issued)
    ids = []
    for i, cost in enumerate(costs):
        assert admit(gate, key, max(cost, 1), rid=f"r{i}", is_byok=is_byok).ok
        ev = event(key, cost, is_byok=is_byok)
        run(gate.finish, reservation_id=f"r{i}", key=key, event=ev)
        ids.append(ev.generation_id)
    return ids
