"""Reconciliation (issue 11, case 6): what the gate charged against what the ledger received.

A usage stream lost before settlement used to leave `ledger_verify` saying "no differences" while
the served requests were never billed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from billing.gate import MemoryGate, RedisGate, keys
from billing.gate.queue import RedisStreamQueue
from billing.ledger import Leg, ledger_post
from billing.models import LedgerAccount, LedgerEntry, ReconciliationRun
from billing.services import credits_grant
from billing.settlement import reconciliation_run_record, settle_pending, usage_reconcile
from common.money import NANOS_PER_USD
from organizations.services import IssuedKey
from tests.billing.support import finished
from tests.support import Triad


@pytest.fixture
def funded(triad: Triad) -> Triad:
    credits_grant(organization=triad.org, amount_nanos=NANOS_PER_USD, reason="test")
    return triad


def test_settled_and_queued_usage_reconciles(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [1_000, 2_000])
    assert usage_reconcile(gate, recheck_s=0) == []  # queued, not yet posted: owed, not lost
    settle_pending(RedisStreamQueue(gate.sync, "w1"))
    finished(gate, api_key, [3_000])
    assert usage_reconcile(gate, recheck_s=0) == []
    call_command("ledger_verify")


def test_a_deleted_usage_stream_is_reported_as_lost_usage(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [1_000, 2_000, 4_000])
    gate.sync.delete(*keys.streams())
    [gap] = usage_reconcile(gate, recheck_s=0)
    assert (gap.organization_id, gap.unsettled, gap.queued) == (funded.org.pk, 7_000, 0)
    assert "7000 charged by the gate is neither queued nor dead-lettered" in gap.describe()
    with pytest.raises(CommandError):
        call_command("ledger_verify")


def test_usage_the_gate_never_charged_is_reported(funded: Triad, api_key: IssuedKey) -> None:
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [1_000])
    settle_pending(RedisStreamQueue(gate.sync, "w1"))
    # A second posting of usage behind the gate's back (a replay under another key, a manual entry).
    ledger_post(
        idempotency_key="usage:rogue",
        kind=LedgerEntry.Kind.USAGE,
        organization=funded.org,
        legs=[
            Leg(LedgerAccount.Kind.ORG_CREDITS, -1_000, funded.org),
            Leg(LedgerAccount.Kind.USAGE_REVENUE, 1_000),
        ],
    )
    [gap] = usage_reconcile(gate, recheck_s=0)
    assert (gap.posted, gap.settled_in_gate) == (2_000, 1_000)
    assert "ledger posted 2000 but the gate settled 1000" in gap.describe()


def test_the_embedded_gate_reconciles_the_same_way(funded: Triad, api_key: IssuedKey) -> None:
    gate = MemoryGate()
    finished(gate, api_key, [1_000, 2_000])
    assert usage_reconcile(gate, recheck_s=0) == []
    settle_pending(gate.queue())
    assert usage_reconcile(gate, recheck_s=0) == []


def test_the_periodic_task_alarms_on_lost_usage(
    funded: Triad, api_key: IssuedKey, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from billing import settlement, tasks

    gate = RedisGate(settings.REDIS_URL)
    monkeypatch.setattr(settlement, "get_gate", lambda: gate)
    finished(gate, api_key, [5_000])
    assert tasks.usage_reconcile_task() == {"gaps": 0, "dead_lettered": 0}
    gate.sync.delete(*keys.streams())
    monkeypatch.setattr(settlement.time, "sleep", lambda s: None)
    with caplog.at_level("ERROR", logger="billing.reconcile"):
        assert tasks.usage_reconcile_task() == {"gaps": 1, "dead_lettered": 0}
    assert "neither queued nor dead-lettered" in caplog.text


def test_each_run_is_kept_for_the_admin_with_what_disagreed(
    funded: Triad, api_key: IssuedKey, admin_client: Client
) -> None:
    gate = RedisGate(settings.REDIS_URL)
    finished(gate, api_key, [1_000])
    assert reconciliation_run_record(gate, recheck_s=0).agreed
    gate.sync.delete(*keys.streams())
    run = reconciliation_run_record(gate, recheck_s=0)
    assert not run.agreed
    [gap] = run.gaps
    assert gap["organization_id"] == funded.org.pk
    assert "neither queued nor dead-lettered" in gap["detail"]

    page = admin_client.get(f"/admin/billing/reconciliationrun/{run.pk}/change/")
    assert page.status_code == 200
    assert "neither queued nor dead-lettered" in page.content.decode()
    assert admin_client.get("/admin/billing/reconciliationrun/").status_code == 200


def test_old_runs_are_forgotten(funded: Triad) -> None:
    old = ReconciliationRun.objects.create()
    ReconciliationRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    reconciliation_run_record(recheck_s=0)
    assert not ReconciliationRun.objects.filter(pk=old.pk).exists()
    assert ReconciliationRun.objects.count() == 1
