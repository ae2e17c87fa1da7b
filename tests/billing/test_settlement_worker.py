"""A real Celery worker killed (SIGKILL) in the middle of a settlement batch loses and repeats nothing.

To be sure the kill lands inside the settlement transaction, the test holds a row lock on the
organization's credit account: the worker writes the batch's Generation rows, then waits for that
lock in `ledger_post_many`, with its transaction open, until it is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from billing.gate import RedisGate, keys, queue
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount, LedgerEntry, UsageDeadLetter
from billing.services import credits_grant
from common.money import NANOS_PER_USD
from openrouter_site.celery import app
from organizations.services import IssuedKey
from tests.billing.support import admit, event, finished, key_state, run
from tests.support import Triad

REPO = Path(__file__).resolve().parents[2]
EVENTS = 40


def start_worker() -> subprocess.Popen[bytes]:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SETTLEMENT_CONSUMER": "crash-test",
        # A settlement worker serves no URLs; the URL-conf system checks belong to the web tests.
        "CELERY_SKIP_CHECKS": "1",
    }
    cmd = [sys.executable, "-m", "celery", "-A", "openrouter_site", "worker", "-Q", "billing", "--pool", "solo"]
    cmd += ["-n", f"crash-{time.time_ns()}@localhost", "--without-gossip", "--without-mingle", "-l", "WARNING"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.worker
def test_it_posts_every_event_exactly_once_after_a_worker_is_killed_mid_batch(
    transactional_db: None, triad: Triad, api_key: IssuedKey
) -> None:
    credits_grant(organization=triad.org, amount_nanos=NANOS_PER_USD, reason="test")
    gate = RedisGate(settings.REDIS_URL)
    ids = finished(gate, api_key, [1_000 + i for i in range(EVENTS)])
    expected_spend = sum(1_000 + i for i in range(EVENTS))

    with transaction.atomic():
        LedgerAccount.objects.select_for_update().get(kind=LedgerAccount.Kind.ORG_CREDITS, organization=triad.org)
        worker = start_worker()
        try:
            app.send_task("billing.settle_usage")
            wait_for(lambda: _pending(gate) == EVENTS, 60, "the worker to claim the batch")
            wait_for(lambda: _blocked_writer() is not None, 60, "the worker to wait inside its transaction")
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert Generation.objects.count() == 0  # the killed transaction rolled back
    assert _pending(gate) == EVENTS  # and the batch is still owed

    worker = start_worker()
    try:
        app.send_task("billing.settle_usage")
        wait_for(lambda: sum(gate.sync.xlen(s) for s in keys.streams()) == 0, 60, "the restarted worker to settle")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)

    assert sorted(Generation.objects.values_list("generation_id", flat=True)) == sorted(ids)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.USAGE).count() == EVENTS
    assert org_balance_nanos(triad.org) == NANOS_PER_USD - expected_spend
    view = gate.org_credit_view(triad.org.pk)
    assert (view["spent"], view["unsettled"], view["reserved"]) == (expected_spend, 0, 0)
    call_command("ledger_verify")


def _pending(gate: RedisGate) -> int:
    total = 0
    for stream in keys.streams():
        try:
            total += int(gate.sync.xpending(stream, queue.GROUP)["pending"])
        except Exception:  # the group does not exist until a claim first visits the shard
            continue
    return total


def _blocked_writer() -> int | None:
    """The backend waiting for this connection's lock after writing Generation rows in its open transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT waiting.pid FROM pg_locks waiting
            JOIN pg_locks wrote ON wrote.pid = waiting.pid
                AND wrote.relation = 'billing_generation'::regclass AND wrote.mode = 'RowExclusiveLock'
            WHERE NOT waiting.granted AND pg_backend_pid() = ANY(pg_blocking_pids(waiting.pid))
            """
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


@pytest.mark.worker
def test_a_poison_event_is_dead_lettered_by_the_worker_and_the_rest_of_its_batch_posts(
    transactional_db: None, triad: Triad, api_key: IssuedKey
) -> None:
    """Issue 11, case 1: an event PostgreSQL refuses (here a token count past its column) used to be
    re-claimed first on every tick, and no organization's usage posted again."""
    credits_grant(organization=triad.org, amount_nanos=NANOS_PER_USD, reason="test")
    gate = RedisGate(settings.REDIS_URL)
    key = key_state(api_key)
    good_ids, poison_id, charged = [], "", 0
    for i in range(6):
        ev = event(key, 1_000 + i)
        if i == 2:
            ev.prompt_tokens, poison_id = 2**40, ev.generation_id  # "integer out of range"
        else:
            good_ids.append(ev.generation_id)
        assert admit(gate, key, 10_000, rid=f"p{i}").ok
        charged += run(gate.finish, reservation_id=f"p{i}", key=key, event=ev)

    worker = start_worker()
    try:
        app.send_task("billing.settle_usage")
        wait_for(
            lambda: sum(gate.sync.xlen(s) for s in keys.streams()) == 0, 60, "the worker to get past the poison event"
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)

    assert sorted(Generation.objects.values_list("generation_id", flat=True)) == sorted(good_ids)
    letter = UsageDeadLetter.objects.get()
    assert letter.generation_id == poison_id and "out of range" in letter.error
    view = gate.org_credit_view(triad.org.pk)
    assert (view["spent"], view["unsettled"]) == (charged, letter.charge_nanos)
    assert org_balance_nanos(triad.org) == NANOS_PER_USD - (charged - letter.charge_nanos)
