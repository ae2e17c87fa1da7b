"""Issue 11, cases 5-7 against a real uvicorn gateway process: a SIGKILLed gateway's holds, a lost usage
stream, and the Redis memory each request leaves behind.

Housekeeping and settlement (Celery beat's tasks) run in this process, called by the test, so each
case controls when they happen; the gateway is the real ASGI app in its own process.
"""

from __future__ import annotations

import io
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.gate import keys, queue
from billing.ledger import org_balance_nanos
from billing.services import credits_grant
from billing.settlement import usage_reconcile
from billing.tasks import reservations_expire
from organizations.services import api_key_create, organization_create
from tests.e2e.support import (
    GRANT_NANOS,
    Gateway,
    World,
    _model,
    expected_cost,
    gateway_env,
    settle_usage,
    spawn_gateway,
    stop_gateway,
)
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider

pytestmark = pytest.mark.e2e

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
OK_COST = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
LEASE_S = 4
HOLD = 2_104_000  # one request's hold with max_tokens 1000 (see the test)


@pytest.fixture
def gateways(
    world: World, mock_provider: MockProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Gateway]]:
    """Gateways started by the test (appended to the list) with a short hold lease; all stopped at the end."""
    monkeypatch.setenv("RESERVATION_TTL_SECONDS", str(LEASE_S))
    started: list[Gateway] = []
    yield started
    for gw in started:
        stop_gateway(gw)


def post(gw: Gateway, api_key: str, model: str = "mock-openai/ok", **body: Any) -> httpx.Response:
    return httpx.post(
        f"{gw.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {api_key}"},
        json={"model": model, "messages": MESSAGES, **body},
        timeout=30,
    )


def test_a_sigkilled_gateways_holds_are_released_within_about_one_lease(
    world: World, mock_provider: MockProvider, gateways: list[Gateway], tmp_path: Path
) -> None:
    """Case 5: 20 streams hold all of an organization's credit when the gateway is SIGKILLed; a fresh
    process admits the organization again within about one lease (was: 402 for 15 minutes)."""
    _model("mock-openai/slow-chunks-2000", [(world.providers["mock-openai"], "mock-slow-chunks-2000")])
    org = organization_create(name="Crash Org", owner=world.owner)
    # max_tokens 1000 at $2/Mtok holds 2,000,000 nanos of completion plus the prompt's upper bound
    # (104 tokens here) per request: the grant covers 20 holds and not a 21st.
    grant = 20 * HOLD + HOLD // 2
    credits_grant(organization=org, amount_nanos=grant, reason="crash test")
    api_key = api_key_create(organization=org, name="crash", created_by=world.owner).key
    env = gateway_env(world, mock_provider)
    first = spawn_gateway(env, tmp_path / "first.log")
    gateways.append(first)

    opened: list[int] = []
    lock = threading.Lock()

    def open_stream() -> None:
        try:
            with httpx.stream(
                "POST",
                f"{first.api_url}/chat/completions",
                headers={"Authorization": f"Bearer {api_key}"},
                json={
                    "model": "mock-openai/slow-chunks-2000",
                    "messages": MESSAGES,
                    "stream": True,
                    "max_tokens": 1000,
                },
                timeout=60,
            ) as res:
                with lock:
                    opened.append(res.status_code)
                for _ in res.iter_bytes():
                    pass
        except httpx.HTTPError:
            pass  # the gateway is killed under the stream

    threads = [threading.Thread(target=open_stream, daemon=True) for _ in range(20)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(opened) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened == [200] * 20
    assert int(redis.Redis.from_url(settings.REDIS_URL).hget(keys.org(org.pk), "res") or 0) == 20 * HOLD
    refused = post(first, api_key, max_tokens=1000)
    assert refused.status_code == 402  # the 20 holds took all the credit

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(5)
    killed_at = time.monotonic()
    for t in threads:
        t.join(10)

    second = spawn_gateway(env, tmp_path / "second.log")
    gateways.append(second)
    waited = 0.0
    while True:
        reservations_expire()  # Celery beat's housekeeping tick
        res = post(second, api_key, max_tokens=1000)
        waited = time.monotonic() - killed_at
        if res.status_code == 200:
            break
        assert res.status_code == 402, res.text
        assert waited < 3 * LEASE_S, f"still refused {waited:.1f}s after the crash (lease {LEASE_S}s)"
        time.sleep(0.25)
    print(f"\nadmitted again {waited:.1f}s after SIGKILL (lease {LEASE_S}s)")
    settle_usage()
    # Holds admitted between two lease renewals keep their admission deadline, which whole seconds
    # can put up to a second before the renewed ones': the first admission may come when only some
    # have lapsed. Every one of the 20 must still be released within the same bound.
    reserved = redis.Redis.from_url(settings.REDIS_URL)
    while int(reserved.hget(keys.org(org.pk), "res") or 0) and time.monotonic() - killed_at < 3 * LEASE_S:
        reservations_expire()
        time.sleep(0.25)
    assert int(reserved.hget(keys.org(org.pk), "res") or 0) == 0  # all 20 released
    assert org_balance_nanos(org) == grant - OK_COST  # only the request that was served is charged
    call_command("ledger_verify")


def test_a_deleted_usage_stream_is_reported_by_reconciliation(
    world: World, mock_provider: MockProvider, gateways: list[Gateway], tmp_path: Path
) -> None:
    """Case 6: served requests whose usage stream was lost are found, per organization, not 'no differences'."""
    gw = spawn_gateway(gateway_env(world, mock_provider), tmp_path / "gateway.log")
    gateways.append(gw)
    served = 5
    for _ in range(served):
        assert post(gw, world.key.key).status_code == 200
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + 10
    while sum(client.xlen(s) for s in keys.streams()) < served and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(client.xlen(s) for s in keys.streams()) == served
    assert client.delete(*keys.streams()) == 1  # lost before settlement (a failover without AOF, a bad FLUSH)

    gaps = usage_reconcile(recheck_s=0.2)
    assert [(g.organization_id, g.unsettled, g.queued, g.dead_lettered) for g in gaps] == [
        (world.org.pk, served * OK_COST, 0, 0)
    ]
    err = io.StringIO()
    with pytest.raises(CommandError, match="problem"):
        call_command("ledger_verify", stderr=err)
    assert f"{world.org.pk}" in err.getvalue()


def _gate_bytes(client: redis.Redis) -> tuple[int, int]:
    """(keys, bytes by MEMORY USAGE) of this test's Redis db: INFO's used_memory is server-wide, and
    other databases on the same server move it."""
    total = count = 0
    for name in client.scan_iter(count=1000):
        total += int(client.memory_usage(name, samples=0) or 0)
        count += 1
    return count, total


def test_redis_memory_per_settled_request_is_bounded(
    world: World, mock_provider: MockProvider, gateways: list[Gateway], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Case 7: at steady state a settled request leaves (almost) nothing in Redis. The per-request
    markers that remain for a while (finished: 2 leases; settled guard: SETTLED_GUARD_TTL) are bounded
    by minutes, not a day; the test shortens them so it can watch them go."""
    guard_ttl = queue.SETTLED_GUARD_TTL
    assert guard_ttl <= 900
    monkeypatch.setenv("RESERVATION_TTL_SECONDS", "1")  # the finished marker lives 2 leases
    monkeypatch.setattr(queue, "SETTLED_GUARD_TTL", 2)  # settlement runs in this process
    gw = spawn_gateway(gateway_env(world, mock_provider), tmp_path / "gateway.log")
    gateways.append(gw)
    client = redis.Redis.from_url(settings.REDIS_URL)
    transient = 3.5
    live: list[tuple[int, int]] = []

    def serve(n: int) -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {world.key.key}"}) as http:
            for _ in range(n):
                res = http.post(
                    f"{gw.api_url}/chat/completions", json={"model": "mock-openai/ok", "messages": MESSAGES}
                )
                assert res.status_code == 200

    def settled_state() -> tuple[int, int, int]:
        while sum(client.xlen(s) for s in keys.streams()):
            settle_usage()
        live.append(_gate_bytes(client))  # before the per-request markers expire
        time.sleep(transient)
        info: Any = client.info("memory")
        count, total = _gate_bytes(client)
        return count, total, int(info["used_memory"])

    serve(20)  # warm: key windows, org mirror, catalog, the stream and its group
    keys0, bytes0, used0 = settled_state()
    n = 500
    serve(n)
    keys1, bytes1, used1 = settled_state()
    per_request = (bytes1 - bytes0) / n
    print(
        f"\nRedis after {n} settled requests: {keys1 - keys0:+d} keys, {per_request:.1f} bytes/request in this db"
        f" (server used_memory {(used1 - used0) / n:+.1f} bytes/request, other dbs included);"
        f" {(live[1][1] - bytes0) / n:.1f} bytes/request while the markers live (at most"
        f" {guard_ttl // 60} minutes in production)"
    )
    assert org_balance_nanos(world.org) == GRANT_NANOS - (n + 20) * OK_COST
    assert keys1 - keys0 <= 2
    assert per_request < 200
    call_command("ledger_verify")
