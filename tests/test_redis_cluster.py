"""The Redis side on a real three-node Redis Cluster: admission, settlement and health.

The fixture starts three `redis-server --cluster-enabled yes` processes on ports 7000-7002 in a temp
dir and joins them with `redis-cli --cluster create`. Organizations are picked so that their gate
keys live on different nodes; every script and MULTI must then stay inside one hash slot, or Redis
refuses it with CROSSSLOT. A machine without redis-server fails here: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from billing.gate import RedisGate, get_gate, keys
from billing.gate.queue import GROUP
from billing.ledger import org_balance_nanos
from billing.models import Generation
from billing.services import credits_grant
from billing.settlement import settle_pending, usage_reconcile
from common.invalidation import CHANNEL, message, parse
from common.redis import async_pubsub, sync_redis
from organizations.services import IssuedKey, api_key_create, organization_create
from proxy.health import keys as health_keys
from proxy.health.redis_store import RedisHealthStore
from tests.billing.support import admit, event, key_state, run
from tests.support import Triad

PORTS = (7000, 7001, 7002)
URL = f"redis://127.0.0.1:{PORTS[0]}/0"
USD = 1_000_000_000


def _cli(port: int, *args: str) -> str:
    done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=30)
    return done.stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert shutil.which("redis-server") and shutil.which("redis-cli"), "redis-server and redis-cli are required"
    tmp: Path = tmp_path_factory.mktemp("redis-cluster")
    procs = []
    for port in PORTS:
        # fmt: off
        cmd = [
            "redis-server", "--port", str(port), "--cluster-enabled", "yes",
            "--cluster-config-file", str(tmp / f"nodes-{port}.conf"), "--dir", str(tmp),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]
        # fmt: on
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 20
        while any("PONG" not in _cli(p, "ping") for p in PORTS):
            assert time.monotonic() < deadline, "the cluster nodes did not start"
            time.sleep(0.1)
        nodes = [f"127.0.0.1:{p}" for p in PORTS]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        while any("cluster_state:ok" not in _cli(p, "cluster", "info") for p in PORTS):
            assert time.monotonic() < deadline + 40, "the cluster never reached cluster_state:ok"
            time.sleep(0.2)
        yield URL
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.fixture
def on_cluster(cluster: str, settings: Any) -> Iterator[str]:
    settings.REDIS_CLUSTER = True
    settings.REDIS_URL = cluster
    get_gate.cache_clear()  # the ledger hooks' gate must be the cluster's too, and not outlive the test
    sync_redis(cluster).flushall()
    yield cluster
    get_gate.cache_clear()


def _node(client: Any, key: str) -> str:
    return str(client.get_node_from_key(key).name)


def _orgs_on_every_node(triad: Triad, client: Any) -> list[IssuedKey]:
    """Organizations (with a key each) until their shards cover all three nodes, one per node."""
    by_node: dict[str, IssuedKey] = {}
    for n in range(4 * keys.shards()):
        org = organization_create(name=f"Org {n}", owner=triad.owner)
        node = _node(client, keys.org(org.pk))
        if node not in by_node:
            by_node[node] = api_key_create(organization=org, name="k", created_by=triad.owner)
        if len(by_node) == len(PORTS):
            break
    assert len(by_node) == len(PORTS), "no shard landed on some node"
    return list(by_node.values())


@pytest.mark.django_db(transaction=True)
def test_admission_settlement_and_health_run_on_a_three_node_cluster(on_cluster: str, triad: Triad) -> None:
    gate = RedisGate(on_cluster)
    client: Any = gate.sync  # a RedisCluster, typed as Redis by common.redis
    assert type(client).__name__ == "RedisCluster"
    issued = _orgs_on_every_node(triad, client)
    states = [key_state(i) for i in issued]

    # Each organization's keys share one slot with its shard's stream and reservation records...
    for key in states:
        s = keys.shard(key.org_id)
        slot = client.cluster_keyslot(keys.org(key.org_id))
        same = [
            keys.key(key.org_id, key.key_hash),
            keys.usage_window(key.org_id, key.key_hash, "all"),
            keys.free_day(key.org_id, "d20260101"),
            keys.finished(key.org_id, "r"),
            keys.stream(s),
            keys.reservations(s),
            keys.deadlines(s),
            keys.settled_prefix(s) + "gen",
        ]
        assert {client.cluster_keyslot(k) for k in same} == {slot}
    # ...and the three organizations' slots are served by three different nodes.
    assert len({_node(client, keys.org(k.org_id)) for k in states}) == 3

    for one in issued:
        credits_grant(organization=one.api_key.organization, amount_nanos=USD, reason="test")
    charges = []
    for i, key in enumerate(states):
        assert admit(gate, key, 50_000, rid=f"done-{i}").ok
        assert admit(gate, key, 70_000, rid=f"crashed-{i}").ok  # never finished: its lease lapses
        assert gate.org_credit_view(key.org_id)["reserved"] == 120_000
        ev = event(key, 10_000 * (i + 1))
        charges.append(run(gate.finish, reservation_id=f"done-{i}", key=key, event=ev))
        # A retried finish charges nothing twice.
        assert run(gate.finish, reservation_id=f"done-{i}", key=key, event=ev) == charges[-1]
    assert charges == [10_000, 20_000, 30_000]
    gate.leases.untrack("crashed-0")
    gate.leases.untrack("crashed-1")
    # The renewer moves the one still-tracked hold (whichever node has it); the others lapse.
    live = keys.deadlines(keys.shard(states[2].org_id))
    lapse_at = float(client.zscore(live, "crashed-2")) + 0.5
    time.sleep(1.1)  # admission deadlines are whole seconds: let the renewed one pass the first lease
    async_to_sync(gate.leases.renew_now)()
    assert float(client.zscore(live, "crashed-2")) > lapse_at
    assert gate.expire_reservations(now=lapse_at) == 2  # two shards' lapsed holds, on two nodes
    assert gate.org_credit_view(states[2].org_id)["reserved"] == 70_000
    assert gate.expire_reservations(now=time.time() + 3600) == 1
    assert all(gate.org_credit_view(k.org_id)["reserved"] == 0 for k in states)

    # Settlement: the real drain reads every shard's stream into the ledger, then acks per shard.
    queued = gate.queued_charges()
    assert queued == {k.org_id: c for k, c in zip(states, charges, strict=True)}
    assert settle_pending(gate.queue()) == 3
    assert sum(client.xlen(s) for s in keys.streams()) == 0
    assert sum(int(client.xpending(keys.stream(keys.shard(k.org_id)), GROUP)["pending"]) for k in states) == 0
    for key, charge, one in zip(states, charges, issued, strict=True):
        org = one.api_key.organization
        assert Generation.objects.filter(organization=org).count() == 1
        assert org_balance_nanos(org) == USD - charge
        view = gate.org_credit_view(key.org_id)
        assert (view["spent"], view["unsettled"], view["reserved"]) == (charge, 0, 0)
    assert gate.usage_counters() == {k.org_id: (c, 0) for k, c in zip(states, charges, strict=True)}
    assert usage_reconcile(gate, recheck_s=0) == []
    call_command("ledger_verify")

    # Dropping a dead-lettered event is a MULTI (XACK + XDEL) on its shard's node.
    assert admit(gate, states[1], 1_000, rid="poison").ok
    run(gate.finish, reservation_id="poison", key=states[1], event=event(states[1], 1_000))
    queue = gate.queue()
    claimed = queue.claim(10)
    assert [c.event.organization_id for c in claimed] == [states[1].org_id]
    queue.drop(claimed)
    stream = keys.stream(keys.shard(states[1].org_id))
    assert client.xlen(stream) == 0
    assert int(client.xpending(stream, GROUP)["pending"]) == 0


@pytest.mark.django_db(transaction=True)
def test_health_records_and_views_span_nodes(on_cluster: str) -> None:
    client: Any = sync_redis(on_cluster)
    by_node: dict[str, int] = {}
    for eid in range(1, 100):
        by_node.setdefault(_node(client, health_keys.endpoint(eid)), eid)
    failing, healthy, idle = by_node.values()
    for eid in (failing, healthy):
        assert {client.cluster_keyslot(k) for k in health_keys.record_keys(eid)} == {
            client.cluster_keyslot(health_keys.endpoint(eid))
        }

    async def main() -> tuple[Any, Any]:
        writer = RedisHealthStore(url=on_cluster)
        await writer.record(healthy, ok=True, latency_ms=120.0, org_id=1)
        for n in range(5):  # five failures from two organizations open the breaker
            await writer.record(failing, ok=False, org_id=1 + n % 2)
        await writer.close()  # writes whatever is buffered
        reader = RedisHealthStore(url=on_cluster)  # another process: sees only what Redis holds
        seen = await reader.view([failing, healthy, idle])
        await reader.close()
        return seen, reader.stats([failing, healthy])

    view, stats = asyncio.run(main())
    assert view.get(failing).circuit_open
    assert not view.get(healthy).circuit_open
    assert view.get(healthy).latency_p50_ms == 120.0
    assert stats[healthy]["uptime_last_5m"] == 100.0  # the side hashes read back through a cluster pipeline
    assert stats[failing]["uptime_last_5m"] == 0.0
    assert client.exists(health_keys.endpoint(idle)) == 0


def test_invalidation_messages_cross_the_cluster(on_cluster: str) -> None:
    """A key change published on one node reaches a gateway subscribed through another."""

    async def main() -> tuple[str, str]:
        pubsub = await async_pubsub()
        await pubsub.subscribe(CHANNEL)
        ident = uuid.uuid4().hex
        sync_redis().publish(CHANNEL, message("key", ident))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = await pubsub.get_message(timeout=0.5)
            if msg and msg.get("type") == "message":
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                return parse(msg["data"])
        raise AssertionError("no invalidation message arrived")

    assert asyncio.run(main())[0] == "key"
