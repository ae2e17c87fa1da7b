"""One bad usage event never stops settlement (issue 11, case 1).

A NUL in the client's `user` and an upstream id longer than its column are made storable before the
write; an event that still fails is isolated from its batch, dead-lettered with its error, stays
counted by the gate, and is posted by `usage_deadletter_retry` after a fix.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from billing import settlement
from billing.gate import RedisGate, keys
from billing.gate.queue import RedisStreamQueue
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerEntry, UsageDeadLetter
from billing.services import credits_grant
from billing.settlement import TRUNCATED, settle_pending, storable_text
from billing.usage import UsageEvent
from common.money import NANOS_PER_USD
from organizations.services import IssuedKey
from tests.billing.support import Gate, admit, event, key_state, run
from tests.support import Triad

USD = NANOS_PER_USD
LONG_ID = "chatcmpl-" + "x" * 291  # 300 characters; the column holds 200


def poisoned(gate: Gate, issued: IssuedKey) -> tuple[list[str], list[str], int]:
    """Admit and finish 3 good events around a NUL `user` and a 300-char upstream id.

    Returns (good generation ids, bad generation ids, total charge)."""
    key = key_state(issued)
    good, bad, total = [], [], 0
    for i in range(5):
        ev = event(key, 1_000 + i)
        if i == 1:
            ev.external_user = "a\x00b"
        if i == 3:
            ev.upstream_id = LONG_ID
        rid = uuid.uuid4().hex
        assert admit(gate, key, 10_000, rid=rid).ok
        total += run(gate.finish, reservation_id=rid, key=key, event=ev)
        (bad if i in (1, 3) else good).append(ev.generation_id)
    return good, bad, total


@pytest.fixture
def funded(triad: Triad) -> Triad:
    credits_grant(organization=triad.org, amount_nanos=USD, reason="test")
    return triad


def test_storable_text_removes_nul_and_marks_a_cut() -> None:
    assert storable_text("a\x00b", 10) == "ab"
    cut = storable_text("y" * 300, 200)
    assert len(cut) == 200 and cut.endswith(TRUNCATED)
    assert storable_text("\ud800x") == "?x"  # a lone surrogate cannot be encoded for PostgreSQL


def test_values_postgresql_refuses_are_made_storable_and_everything_posts(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    _good, bad, total = poisoned(gate, api_key)
    assert settle_pending(RedisStreamQueue(gate.sync, "w1")) == 5
    assert Generation.objects.count() == 5
    assert Generation.objects.get(generation_id=bad[0]).external_user == "ab"
    upstream_id = Generation.objects.get(generation_id=bad[1]).upstream_id
    assert len(upstream_id) == 200 and upstream_id.endswith(TRUNCATED)
    assert org_balance_nanos(funded.org) == USD - total
    assert not UsageDeadLetter.objects.exists()
    call_command("ledger_verify")


def test_events_that_fail_alone_are_dead_lettered_and_the_rest_post(
    funded: Triad, api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in for a value the edge does not know to clean yet: without the cleaning these fail.
    monkeypatch.setattr(settlement, "storable_event", lambda e: e)
    gate = RedisGate(settings.REDIS_URL)
    good, bad, total = poisoned(gate, api_key)
    queue = RedisStreamQueue(gate.sync, "w1")

    assert settle_pending(queue) == 5
    assert sorted(Generation.objects.values_list("generation_id", flat=True)) == sorted(good)
    letters = {d.generation_id: d for d in UsageDeadLetter.objects.all()}
    assert sorted(letters) == sorted(bad)
    assert "NUL" in letters[bad[0]].error or "0x00" in letters[bad[0]].error
    assert "too long" in letters[bad[1]].error
    assert sum(gate.sync.xlen(s) for s in keys.streams()) == 0  # the queue moved on: the next tick has nothing stuck
    assert settle_pending(queue) == 0
    bad_charge = sum(d.charge_nanos for d in letters.values())
    view = gate.org_credit_view(funded.org.pk)
    # The gate still counts the dead-lettered charges as spent, and as not yet settled.
    assert (view["spent"], view["unsettled"]) == (total, bad_charge)
    with pytest.raises(CommandError):
        call_command("ledger_verify")  # revenue the ledger never received is a problem to report

    with pytest.raises(CommandError):
        call_command("usage_deadletter_retry")  # still broken: nothing changes but the attempt count
    assert UsageDeadLetter.objects.get(generation_id=bad[0]).attempts == 2

    monkeypatch.undo()  # the fix ships
    call_command("usage_deadletter_retry")
    assert Generation.objects.count() == 5
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count() == 5
    assert org_balance_nanos(funded.org) == USD - total
    assert gate.org_credit_view(funded.org.pk)["unsettled"] == 0
    call_command("usage_deadletter_retry")  # a second run finds nothing open and subtracts nothing
    assert gate.org_credit_view(funded.org.pk)["unsettled"] == 0
    call_command("ledger_verify")


def test_a_lost_database_keeps_the_batch_queued_instead_of_dead_lettering_it(
    funded: Triad, api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import OperationalError

    gate = RedisGate(settings.REDIS_URL)
    poisoned(gate, api_key)

    def down(events: list[UsageEvent]) -> int:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(settlement, "usage_events_post", down)
    with pytest.raises(OperationalError):
        settle_pending(RedisStreamQueue(gate.sync, "w1"))
    assert not UsageDeadLetter.objects.exists()
    monkeypatch.undo()
    assert settle_pending(RedisStreamQueue(gate.sync, "w1")) == 5
    assert Generation.objects.count() == 5
