"""The credit gate on the real Redis (and its in-process twin): holds, limits, charges, expiry."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from billing.gate import MemoryGate, RedisGate, gate_housekeeping, get_gate, keys, usage_queue
from billing.ledger import Leg, ledger_post, org_balance_nanos
from billing.models import LedgerAccount, LedgerEntry
from billing.services import credits_grant, credits_revoke
from billing.settlement import settle_pending
from billing.tasks import reservations_expire
from common.money import NANOS_PER_USD
from organizations.services import IssuedKey, api_key_create
from tests.billing.support import Gate, admit, event, finished, key_state, run
from tests.support import Triad

USD = NANOS_PER_USD


@pytest.fixture(params=["redis", "memory"])
def gate(request: pytest.FixtureRequest) -> Gate:
    if request.param == "redis":
        return RedisGate(settings.REDIS_URL)
    return MemoryGate()


def test_it_admits_within_credit_and_refuses_with_402_beyond(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=1 * USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 600_000_000).ok
    refused = admit(gate, key, 600_000_000)
    assert (refused.ok, refused.status, refused.code) == (False, 402, "insufficient_credits")
    assert refused.metadata == {"limit_source": "openrouter_credits"}
    assert gate.org_credit_view(triad.org.pk)["reserved"] == 600_000_000


def test_it_releases_the_hold_and_charges_the_actual_cost(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=1 * USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 900_000_000, rid="r1").ok
    ev = event(key, 123_456_789)
    assert run(gate.finish, reservation_id="r1", key=key, event=ev) == 123_456_789
    assert ev.cost_nanos == 123_456_789
    view = gate.org_credit_view(triad.org.pk)
    assert view == {"credits": USD, "spent": 123_456_789, "reserved": 0, "unsettled": 123_456_789, "purchased": 0}
    usage = gate.key_usage(key.key_id, key.key_hash, key.org_id)
    assert usage["total"] == usage["daily"] == usage["weekly"] == usage["monthly"] == 123_456_789
    assert usage["byok_total"] == 0


def test_it_does_not_double_count_a_repeated_finish(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=1 * USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 500, rid="r1").ok
    ev = event(key, 400)
    assert run(gate.finish, reservation_id="r1", key=key, event=ev) == 400
    assert run(gate.finish, reservation_id="r1", key=key, event=ev) == 400
    assert gate.org_credit_view(triad.org.pk)["spent"] == 400
    assert [q.event.generation_id for q in gate.queue().claim(10)] == [ev.generation_id]


def test_it_releases_without_charge_when_the_request_failed(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, USD, rid="r1").ok
    assert run(gate.finish, reservation_id="r1", key=key, event=None) == 0
    assert gate.org_credit_view(triad.org.pk)["reserved"] == 0
    assert admit(gate, key, USD).ok


def test_it_enforces_the_key_limit_with_its_own_402(gate: Any, triad: Triad) -> None:
    credits_grant(organization=triad.org, amount_nanos=10 * USD, reason="test")
    issued = api_key_create(organization=triad.org, name="capped", limit_nanos=USD, limit_reset="daily")
    key = key_state(issued)
    assert admit(gate, key, 700_000_000, rid="a").ok
    run(gate.finish, reservation_id="a", key=key, event=event(key, 700_000_000))
    refused = admit(gate, key, 400_000_000)
    assert (refused.status, refused.code) == (402, "key_limit_exceeded")
    assert refused.metadata == {"limit_source": "openrouter_key_limit"}
    assert admit(gate, key, 300_000_000).ok


def test_it_counts_byok_in_the_key_limit_only_when_asked(gate: Any, triad: Triad, settings: Any) -> None:
    settings.BYOK_FREE_REQUESTS_PER_MONTH = 0
    credits_grant(organization=triad.org, amount_nanos=10 * USD, reason="test")
    plain = key_state(api_key_create(organization=triad.org, name="plain", limit_nanos=USD))
    strict = key_state(
        api_key_create(organization=triad.org, name="strict", limit_nanos=USD, include_byok_in_limit=True)
    )
    assert admit(gate, plain, 2 * USD, is_byok=True).ok  # only the 5% fee counts against this key
    refused = admit(gate, strict, 2 * USD, is_byok=True)
    assert refused.code == "key_limit_exceeded"


def test_it_charges_the_byok_fee_after_the_monthly_free_requests(gate: Any, triad: Triad, settings: Any) -> None:
    settings.BYOK_FREE_REQUESTS_PER_MONTH = 1
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key_create(organization=triad.org, name="byok"))
    charges = []
    for rid in ("b1", "b2"):
        assert admit(gate, key, 1_000_001, rid=rid, is_byok=True).ok
        charges.append(run(gate.finish, reservation_id=rid, key=key, event=event(key, 1_000_001, is_byok=True)))
    assert charges == [0, 50_001]  # 5% of 1,000,001 nanos, ceiled
    usage = gate.key_usage(key.key_id, key.key_hash, key.org_id)
    assert (usage["total"], usage["byok_total"]) == (50_001, 2_000_002)


def test_it_holds_and_charges_the_configured_byok_fee(gate: Any, triad: Triad, settings: Any) -> None:
    settings.BYOK_FEE_PERCENT = 10
    settings.BYOK_FREE_REQUESTS_PER_MONTH = 0
    credits_grant(organization=triad.org, amount_nanos=150_000, reason="test")
    key = key_state(api_key_create(organization=triad.org, name="byok"))
    assert admit(gate, key, 1_000_000, rid="b1", is_byok=True).ok
    assert gate.org_credit_view(triad.org.pk)["reserved"] == 100_000  # the fee of the worst case, not its list cost
    refused = admit(gate, key, 1_000_000, is_byok=True)
    assert refused.code == "insufficient_credits"
    assert "can cost up to $0.0001 but only $0.00005 is available" in refused.message
    assert run(gate.finish, reservation_id="b1", key=key, event=event(key, 900_000, is_byok=True)) == 90_000


def test_a_plugins_cost_is_held_and_charged_in_full_byok_or_not(gate: Any, triad: Triad, settings: Any) -> None:
    """A web search is the platform's cost: a BYOK request pays it on top of the fee (inside the free
    allowance too), and it is never part of the fee's base."""
    settings.BYOK_FEE_PERCENT, settings.BYOK_FREE_REQUESTS_PER_MONTH = 5, 1
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key_create(organization=triad.org, name="byok"))
    search = 7_000_000
    charges = []
    for rid in ("b1", "b2"):
        assert admit(gate, key, 2_000_000, rid=rid, is_byok=True, plugin_nanos=search).ok
        if rid == "b1":  # the fee of the model's worst case plus the whole search
            assert gate.org_credit_view(triad.org.pk)["reserved"] == 100_000 + search
        ev = replace(event(key, 2_000_000, is_byok=True), plugin_cost_nanos=search)
        charges.append(run(gate.finish, reservation_id=rid, key=key, event=ev))
    assert charges == [search, 100_000 + search]  # within the allowance: the search alone; then fee + search
    assert admit(gate, key, 2_000_000, rid="p1", plugin_nanos=search).ok
    ev = replace(event(key, 1_500_000), plugin_cost_nanos=search)
    assert run(gate.finish, reservation_id="p1", key=key, event=ev) == 1_500_000 + search
    assert settle_pending(gate.queue()) == 3
    call_command("ledger_verify")  # raises on any imbalance
    assert org_balance_nanos(triad.org) == USD - (search + 100_000 + search + 1_500_000 + search)


def test_it_counts_free_byok_requests_per_organization_across_its_keys(gate: Any, triad: Triad, settings: Any) -> None:
    settings.BYOK_FREE_REQUESTS_PER_MONTH = 2
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    first = key_state(api_key_create(organization=triad.org, name="one"))
    second = key_state(api_key_create(organization=triad.org, name="two"))
    charges = []
    for i, key in enumerate([first, second, first]):
        assert admit(gate, key, 2_000_000, rid=f"b{i}", is_byok=True).ok
        charges.append(run(gate.finish, reservation_id=f"b{i}", key=key, event=event(key, 2_000_000, is_byok=True)))
    assert charges == [0, 0, 100_000]
    assert gate.key_usage(second.key_id, second.key_hash, second.org_id)["byok_total"] == 2_000_000


def test_it_refuses_even_free_models_on_a_negative_balance(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=100, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 0, is_free=True).ok
    assert admit(gate, key, 100, rid="r").ok
    # A charge above its hold is capped at the hold, unless the hold had expired first (a stream
    # outliving the reservation TTL): then the whole usage is charged and the balance can go negative.
    gate.expire_reservations(now=time.time() + 10 * 86400)
    run(gate.finish, reservation_id="r", key=key, event=event(key, 150))
    refused = admit(gate, key, 0, is_free=True)
    assert (refused.status, refused.code) == (402, "negative_balance")


def test_it_limits_free_models_per_minute_with_rate_limit_headers(gate: Any, api_key: IssuedKey, settings: Any) -> None:
    settings.FREE_MODEL_RPM = 3
    key = key_state(api_key)
    assert all(admit(gate, key, 0, is_free=True).ok for _ in range(3))
    refused = admit(gate, key, 0, is_free=True)
    assert (refused.status, refused.code) == (429, "free-models-per-min")
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > time.time() * 1000
    assert refused.retry_after is not None and 1 <= refused.retry_after <= 60


def test_it_raises_the_free_daily_cap_once_ten_dollars_were_bought(
    gate: Any, triad: Triad, api_key: IssuedKey, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.FREE_MODEL_RPD_NO_CREDITS = 2
    settings.FREE_MODEL_RPD_WITH_CREDITS = 4
    key = key_state(api_key)
    assert admit(gate, key, 0, is_free=True).ok and admit(gate, key, 0, is_free=True).ok
    refused = admit(gate, key, 0, is_free=True)
    assert (refused.status, refused.code) == (429, "free-models-per-day")
    assert "Add 10 credits" in refused.message
    with django_capture_on_commit_callbacks(execute=True):
        ledger_post(
            idempotency_key="topup:1",
            kind=LedgerEntry.Kind.TOPUP,
            organization=triad.org,
            legs=[Leg(LedgerAccount.Kind.ORG_CREDITS, 10 * USD, triad.org), Leg("payment_clearing", -10 * USD)],
        )
    gate.org_balance_sync(triad.org.pk)  # the ledger hook syncs the process's gate; this test owns another
    assert admit(gate, key, 0, is_free=True).ok and admit(gate, key, 0, is_free=True).ok
    assert admit(gate, key, 0, is_free=True).code == "free-models-per-day-high-balance"


def test_it_expires_the_holds_of_requests_that_never_finished(gate: Any, triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, USD, rid="crashed").ok
    assert gate.expire_reservations(now=time.time() + 10) == 0
    later = time.time() + settings.RESERVATION_TTL_SECONDS + 1
    assert gate.expire_reservations(now=later) == 1
    assert gate.org_credit_view(triad.org.pk)["reserved"] == 0
    assert admit(gate, key, USD).ok


def test_it_sees_a_grant_through_the_ledger_hook(
    triad: Triad, api_key: IssuedKey, django_capture_on_commit_callbacks: Any
) -> None:
    gate = get_gate()
    key = key_state(api_key)
    assert admit(gate, key, USD).code == "insufficient_credits"
    with django_capture_on_commit_callbacks(execute=True):
        credits_grant(organization=triad.org, amount_nanos=2 * USD, reason="late grant")
    assert admit(gate, key, USD).ok


def test_it_reloads_a_lost_mirror_from_the_ledger(triad: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, 300_000_000, rid="r").ok
    run(gate.finish, reservation_id="r", key=key, event=event(key, 300_000_000))
    assert settle_pending(usage_queue()) == 1
    gate.sync.flushdb()  # Redis restarted without persistence
    assert gate.org_credit_view(triad.org.pk)["spent"] == 300_000_000
    assert gate.key_usage(key.key_id, key.key_hash, key.org_id)["total"] == 300_000_000
    assert admit(gate, key, 800_000_000).code == "insufficient_credits"
    assert admit(gate, key, 700_000_000).ok


def test_it_sees_grants_from_other_processes_in_embedded_mode(
    triad: Triad, api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make run` plus `manage.py credits_grant` in another shell: the server's memory re-reads the ledger."""
    from billing.gate import memory_gate

    gate = MemoryGate()
    key = key_state(api_key)
    assert admit(gate, key, USD).code == "insufficient_credits"
    credits_grant(organization=triad.org, amount_nanos=2 * USD, reason="from another process")  # no hook here
    assert admit(gate, key, USD).code == "insufficient_credits"  # within the resync interval
    monkeypatch.setattr(memory_gate, "EMBEDDED_RESYNC_SECONDS", 0.0)
    assert admit(gate, key, USD).ok


def test_it_rereads_the_ledger_when_a_refusal_may_come_from_a_missed_hook(triad: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    key = key_state(api_key)
    assert admit(gate, key, USD).code == "insufficient_credits"
    credits_grant(organization=triad.org, amount_nanos=2 * USD, reason="its on_commit hook never ran")
    gate.sync.delete(keys.resync(triad.org.pk))  # the first refusal's resync window has passed
    assert admit(gate, key, USD).ok
    assert admit(gate, key, 2 * USD).code == "insufficient_credits"  # and it is not re-read again at once


def test_it_housekeeps_expired_holds_and_credit_changes_whose_hook_was_lost(triad: Triad, api_key: IssuedKey) -> None:
    gate = get_gate()
    key = key_state(api_key)
    credits_grant(organization=triad.org, amount_nanos=2 * USD, reason="test")
    assert admit(gate, key, USD, rid="crashed").ok
    credits_revoke(organization=triad.org, amount_nanos=2 * USD, reason="its on_commit hook never ran")
    assert admit(gate, key, 500_000_000).ok  # the gate still believes in the revoked credit...
    assert reservations_expire.name == "billing.reservations_expire"
    done = gate_housekeeping(now=time.time() + settings.RESERVATION_TTL_SECONDS + 1)
    assert done == {"expired": 2, "resynced": 1}
    assert admit(gate, key, 1).code == "insufficient_credits"  # ...until housekeeping re-reads the ledger


def test_the_lua_scripts_spell_no_key_name() -> None:
    """Every Redis key comes from billing/gate/keys.py (KEYS, or a prefix in ARGV): renaming one is one edit."""
    scripts = sorted((Path(keys.__file__).parent / "lua").glob("*.lua"))
    assert scripts
    assert [p.name for p in scripts if "gate:" in p.read_text()] == []


def test_it_follows_a_renamed_key_prefix_through_release_and_ack(
    triad: Triad, api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in [("ORG_PREFIX", "to:"), ("KEY_PREFIX", "tk:"), ("SETTLED_PREFIX", "ts:")]:
        monkeypatch.setattr(keys, name, value)
    gate = RedisGate(settings.REDIS_URL)
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    key = key_state(api_key)
    assert admit(gate, key, USD, rid="crashed").ok
    assert gate.expire_reservations(now=time.time() + settings.RESERVATION_TTL_SECONDS + 1) == 1
    [gen_id] = finished(gate, api_key, [1_000])
    assert settle_pending(gate.queue()) == 1
    assert gate.org_credit_view(triad.org.pk) == {
        "credits": USD,
        "spent": 1_000,
        "reserved": 0,
        "unsettled": 0,
        "purchased": 0,
    }
    shard = keys.shard(triad.org.pk)
    assert gate.sync.exists(f"gate:{{s{shard}}}:tk:{key.key_hash}", f"gate:{{s{shard}}}:ts:{gen_id}") == 2
    assert gate.sync.keys("gate:*:o:*") == gate.sync.keys("gate:*:k:*") == gate.sync.keys("gate:*:s:*") == []
