"""The gate under issue 11's faults, on the real Redis and its in-process twin.

Case 8: the charge never exceeds the hold (the rest is the platform's loss, and the ledger balances).
Case 14: the free-model per-minute limit is a sliding window, so no double burst across a minute.
Cases 4 and 5: holds are leases, renewed while their request runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management import call_command
from django.db import connections

from billing.gate import MemoryGate, RedisGate, rules
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount
from billing.services import credits_grant
from billing.settlement import settle_pending
from common.money import NANOS_PER_USD
from organizations.services import IssuedKey, api_key_create
from tests.billing.support import Gate, admit, event, key_state, run
from tests.support import Triad

USD = NANOS_PER_USD


@pytest.fixture(params=["redis", "memory"])
def gate(request: pytest.FixtureRequest) -> Gate:
    if request.param == "redis":
        return RedisGate(settings.REDIS_URL)
    return MemoryGate()


def test_the_charge_is_capped_at_the_hold_and_the_rest_is_a_platform_loss(
    gate: Any, triad: Triad, api_key: IssuedKey
) -> None:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 10_000, rid="r1").ok
    ev = event(key, 240_000)  # the upstream ignored max_tokens: 24x the hold
    assert run(gate.finish, reservation_id="r1", key=key, event=ev) == 10_000
    assert gate.org_credit_view(triad.org.pk)["spent"] == 10_000
    assert gate.key_usage(key.key_id, key.key_hash, key.org_id)["total"] == 10_000
    assert settle_pending(gate.queue()) == 1
    gen = Generation.objects.get(generation_id=ev.generation_id)
    assert (gen.cost_nanos, gen.list_cost_nanos) == (10_000, 240_000)
    assert org_balance_nanos(triad.org) == USD - 10_000
    platform = dict(LedgerAccount.objects.filter(organization=None).values_list("kind", "balance_nanos"))
    assert platform[LedgerAccount.Kind.USAGE_LOSS] == -230_000
    assert platform[LedgerAccount.Kind.USAGE_REVENUE] == 240_000
    call_command("ledger_verify")


def test_a_key_limit_holds_even_when_every_upstream_overruns(gate: Any, triad: Triad) -> None:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    issued = api_key_create(organization=triad.org, name="capped", created_by=triad.owner, limit_nanos=30_000)
    key = key_state(issued)
    for i in range(5):
        if admit(gate, key, 10_000, rid=f"k{i}").ok:
            run(gate.finish, reservation_id=f"k{i}", key=key, event=event(key, 50_000))
    assert gate.key_usage(key.key_id, key.key_hash, key.org_id)["total"] == 30_000


def test_a_charge_within_the_hold_is_not_touched(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 10_000, rid="r1").ok
    assert run(gate.finish, reservation_id="r1", key=key, event=event(key, 9_999)) == 9_999
    settle_pending(gate.queue())
    assert not LedgerAccount.objects.filter(kind=LedgerAccount.Kind.USAGE_LOSS).exists()


def test_the_free_per_minute_limit_slides_instead_of_resetting_on_the_minute(
    gate: Any, api_key: IssuedKey, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.FREE_MODEL_RPM = 3
    key = key_state(api_key)
    clock = [1_800_000_059.5]  # half a second before a calendar minute ends
    monkeypatch.setattr(rules, "now", lambda: clock[0])
    for _ in range(3):  # at :59.5, :59.7 and :59.9
        assert admit(gate, key, 0, is_free=True).ok
        clock[0] += 0.2
    clock[0] = 1_800_000_060.5  # a new calendar minute: a fixed window would admit 3 more here
    refused = admit(gate, key, 0, is_free=True)
    assert (refused.status, refused.code) == (429, "free-models-per-min")
    # The slot frees when the oldest request turns a minute old, and the headers say so.
    assert int(refused.headers["X-RateLimit-Reset"]) == int((1_800_000_059.5 + 60) * 1000)
    assert refused.retry_after == 59
    clock[0] = 1_800_000_059.5 + 59.9
    assert not admit(gate, key, 0, is_free=True).ok
    clock[0] = 1_800_000_059.5 + 60.1
    assert admit(gate, key, 0, is_free=True).ok
    assert not admit(gate, key, 0, is_free=True).ok  # the other two are still inside the window


def test_a_running_requests_hold_is_renewed_and_a_silent_ones_lapses(
    gate: Any, triad: Triad, api_key: IssuedKey, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cases 4 and 5: housekeeping never frees a live hold, and frees a dead process's in a lease."""
    settings.RESERVATION_TTL_SECONDS = 60
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(rules, "now", lambda: clock[0])
    assert admit(gate, key, 1_000, rid="live").ok
    assert admit(gate, key, 2_000, rid="dead").ok
    gate.leases.untrack("dead")  # its process is gone: nobody renews it
    clock[0] += 45
    assert run(gate.leases.renew_now) == 1
    clock[0] += 30  # 75 s in: past the first lease, inside the renewed one
    assert gate.expire_reservations(now=clock[0]) == 1
    assert gate.org_credit_view(triad.org.pk)["reserved"] == 1_000
    run(gate.finish, reservation_id="live", key=key, event=event(key, 500))
    assert gate.org_credit_view(triad.org.pk)["reserved"] == 0
    assert gate.leases.live == []


def test_the_renewer_keeps_a_long_request_held_in_real_time(
    transactional_db: None, triad: Triad, api_key: IssuedKey, settings: Any
) -> None:
    settings.RESERVATION_TTL_SECONDS = 1
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    live, silent = RedisGate(settings.REDIS_URL), RedisGate(settings.REDIS_URL)

    async def main() -> tuple[int, int]:
        assert (await live.admit(reservation_id="long", key=key, amount_nanos=1_000, is_free=False, is_byok=False)).ok
        assert (await silent.admit(reservation_id="gone", key=key, amount_nanos=2_000, is_free=False, is_byok=False)).ok
        silent.leases.untrack("gone")  # a process that died right after admitting
        await asyncio.sleep(2.5)  # two and a half leases of a request still running
        expired = await sync_to_async(live.expire_reservations)()
        reserved = (await sync_to_async(live.org_credit_view)(triad.org.pk))["reserved"]
        await live.finish(reservation_id="long", key=key, event=None)
        # The cold loads ran on asgiref's thread: close its connection, or the test database stays in use.
        await sync_to_async(connections.close_all)()
        return expired, reserved

    assert asyncio.run(main()) == (1, 1_000)
