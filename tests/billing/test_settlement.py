"""Settlement on the real Redis stream and PostgreSQL: exactly-once posting, replays, orphans."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from billing.gate import MemoryGate, RedisGate, get_gate, keys, queue
from billing.gate.queue import RedisStreamQueue
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount, LedgerEntry
from billing.services import credits_grant
from billing.settlement import settle_batch, settle_pending, usage_events_post
from common.money import NANOS_PER_USD
from organizations.services import IssuedKey
from tests.billing.support import event, finished, key_state
from tests.support import Triad

USD = NANOS_PER_USD


@pytest.fixture
def funded(triad: Triad) -> Triad:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    return triad


def test_it_posts_a_generation_and_a_usage_entry_per_event(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    ids = finished(gate, api_key, [1_000, 2_000, 3_000])
    assert settle_pending(RedisStreamQueue(gate.sync, "w1")) == 3
    assert sorted(Generation.objects.values_list("generation_id", flat=True)) == sorted(ids)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count() == 3
    assert org_balance_nanos(funded.org) == USD - 6_000
    view = gate.org_credit_view(funded.org.pk)
    assert (view["spent"], view["unsettled"]) == (6_000, 0)
    revenue = LedgerAccount.objects.get(kind=LedgerAccount.Kind.USAGE_REVENUE, organization=None)
    assert revenue.balance_nanos == 6_000


def test_it_charges_once_when_a_worker_dies_between_commit_and_ack(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [5_000, 7_000])
    first = RedisStreamQueue(gate.sync, "w1")
    items = first.claim(10)
    with transaction.atomic():
        usage_events_post([i.event for i in items])
    # ...killed here: committed, never acked. The same consumer restarts and sees its pending batch.
    assert settle_batch(RedisStreamQueue(gate.sync, "w1")) == 2
    first.ack(items)  # a late duplicate ack must not subtract the unsettled usage twice
    assert Generation.objects.count() == 2
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count() == 2
    assert org_balance_nanos(funded.org) == USD - 12_000
    assert gate.org_credit_view(funded.org.pk)["unsettled"] == 0
    assert sum(gate.sync.xlen(s) for s in keys.streams()) == 0


def test_it_takes_over_the_batch_of_a_dead_consumer(
    funded: Triad, api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [1_000])
    assert len(RedisStreamQueue(gate.sync, "dead").claim(10)) == 1
    monkeypatch.setattr(queue, "ORPHAN_IDLE_MS", 0)
    assert settle_pending(RedisStreamQueue(gate.sync, "alive")) == 1
    assert Generation.objects.count() == 1


def test_it_records_a_free_generation_without_a_ledger_entry(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    [gen_id] = finished(gate, api_key, [0])
    settle_pending(RedisStreamQueue(gate.sync, "w1"))
    assert Generation.objects.get(generation_id=gen_id).cost_nanos == 0
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).exists()


def test_it_books_byok_fees_as_fee_revenue(funded: Triad, api_key: IssuedKey, settings: Any) -> None:
    settings.BYOK_FREE_REQUESTS_PER_MONTH = 0
    gate = RedisGate(settings.REDIS_URL)
    [gen_id] = finished(gate, api_key, [2_000_000], is_byok=True)
    settle_pending(RedisStreamQueue(gate.sync, "w1"))
    gen = Generation.objects.get(generation_id=gen_id)
    assert (gen.is_byok, gen.list_cost_nanos, gen.cost_nanos) == (True, 2_000_000, 100_000)
    fees = LedgerAccount.objects.get(kind=LedgerAccount.Kind.FEE_REVENUE, organization=None)
    assert fees.balance_nanos == 100_000


def test_it_settles_embedded_mode_through_the_same_service(funded: Triad, api_key: IssuedKey) -> None:
    gate = MemoryGate()
    ids = finished(gate, api_key, [4_000, 6_000])
    assert settle_pending(gate.queue()) == 2
    assert sorted(Generation.objects.values_list("generation_id", flat=True)) == sorted(ids)
    assert org_balance_nanos(funded.org) == USD - 10_000
    assert gate.org_credit_view(funded.org.pk)["unsettled"] == 0
    call_command("ledger_verify")


def test_it_drops_references_that_vanished_instead_of_failing_the_batch(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    [gen_id] = finished(gate, api_key, [1_000])
    api_key.api_key.delete()
    settle_pending(RedisStreamQueue(gate.sync, "w1"))
    gen = Generation.objects.get(generation_id=gen_id)
    assert gen.api_key_id is None and gen.cost_nanos == 1_000


def test_it_settles_by_itself_in_embedded_mode(
    transactional_db: None, triad: Triad, api_key: IssuedKey, settings: Any
) -> None:
    """No Redis, no worker (`make run`): the factory's gate settles through the service billing.apps wired."""
    settings.REDIS_URL = ""
    get_gate.cache_clear()
    try:
        gate = get_gate()
        assert isinstance(gate, MemoryGate)
        credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
        [gen_id] = finished(gate, api_key, [3_000])
        deadline = time.monotonic() + 10
        while not Generation.objects.filter(generation_id=gen_id).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Generation.objects.get(generation_id=gen_id).cost_nanos == 3_000
        assert org_balance_nanos(triad.org) == USD - 3_000
    finally:
        get_gate.cache_clear()


def test_the_redis_gate_hands_out_its_stream_as_the_configured_consumer(
    funded: Triad, api_key: IssuedKey, settings: Any
) -> None:
    settings.SETTLEMENT_CONSUMER = "worker-7"
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [1_000])
    assert len(gate.queue().claim(10)) == 1
    stream = keys.stream(keys.shard(funded.org.pk))
    assert [c["name"] for c in gate.sync.xinfo_consumers(stream, queue.GROUP)] == [b"worker-7"]


def test_it_records_when_a_key_was_last_used_and_never_moves_it_back(funded: Triad, api_key: IssuedKey) -> None:
    key = key_state(api_key)
    newer, older = event(key, 1_000), event(key, 1_000)
    newer.created_at, older.created_at = 1_800_000_000.0, 1_700_000_000.0
    with transaction.atomic():
        usage_events_post([newer])
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.last_used_at == datetime.fromtimestamp(1_800_000_000, tz=UTC)
    with transaction.atomic():
        usage_events_post([older])
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.last_used_at == datetime.fromtimestamp(1_800_000_000, tz=UTC)
