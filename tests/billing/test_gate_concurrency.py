"""Several OS processes hammer one organization through the shared Redis gate: nothing is overspent.

Each process stands for a gateway worker and runs its share of 200 concurrent "streaming" requests
(admit, hold while the stream runs, finish with the actual cost). The credit covers 20 worst cases.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import random
import time
import uuid

import pytest
from django.conf import settings
from django.core.management import call_command

from billing.gate import KeyState, RedisGate
from billing.ledger import org_balance_nanos
from billing.models import Generation
from billing.services import credits_grant
from billing.settlement import settle_pending
from billing.usage import UsageEvent
from organizations.services import IssuedKey
from tests.billing.support import key_state
from tests.support import Triad

PROCESSES = 4
REQUESTS = 200
WORST_CASE = 12_345_678  # nanos: ~1.2 cents per request
AFFORDABLE = 20


async def _one_request(gate: RedisGate, key: KeyState, actual_cost: int) -> tuple[int, str, int]:
    rid = uuid.uuid4().hex
    admission = await gate.admit(reservation_id=rid, key=key, amount_nanos=WORST_CASE, is_free=False, is_byok=False)
    if not admission.ok:
        return admission.status, admission.code, 0
    await asyncio.sleep(random.uniform(0.0, 0.05))  # the stream is running upstream
    event = UsageEvent(
        generation_id=f"gen-{rid}",
        organization_id=key.org_id,
        api_key_id=key.key_id,
        key_hash=key.key_hash,
        user_id=None,
        model="m/x",
        provider_slug="p",
        provider_name="P",
        endpoint_tag="p",
        created_at=time.time(),
        list_cost_nanos=actual_cost,
        streamed=True,
    )
    return 200, "", await gate.finish(reservation_id=rid, key=key, event=event)


def _gateway_process(args: tuple[KeyState, int, float, bool]) -> list[tuple[int, str, int]]:
    key, count, start_at, full_cost = args
    gate = RedisGate(settings.REDIS_URL)  # its own connections, like a separate gateway process

    async def main() -> list[tuple[int, str, int]]:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        costs = [WORST_CASE if full_cost else random.randint(1, WORST_CASE) for _ in range(count)]
        return list(await asyncio.gather(*(_one_request(gate, key, c) for c in costs)))

    return asyncio.run(main())


@pytest.mark.parametrize("full_cost", [True, False], ids=["every-request-costs-its-worst-case", "random-costs"])
def test_it_never_spends_more_than_the_credit_across_processes(
    triad: Triad, api_key: IssuedKey, full_cost: bool
) -> None:
    credit = AFFORDABLE * WORST_CASE
    credits_grant(organization=triad.org, amount_nanos=credit, reason="concurrency test")
    key = key_state(api_key)
    warm = RedisGate(settings.REDIS_URL)
    warm.org_balance_sync(triad.org.pk)  # children never touch the database
    warm.key_usage(key.key_id, key.key_hash, key.org_id)

    start_at = time.time() + 1.0
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(PROCESSES) as pool:
        per_process = pool.map(_gateway_process, [(key, REQUESTS // PROCESSES, start_at, full_cost)] * PROCESSES)
    results = [r for chunk in per_process for r in chunk]

    admitted = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    spent = sum(r[2] for r in admitted)
    assert len(results) == REQUESTS
    assert spent <= credit
    assert all((status, code) == (402, "insufficient_credits") for status, code, _ in refused)
    if full_cost:
        assert len(admitted) == AFFORDABLE  # exactly what the credit covers, no more, no fewer
    else:
        assert len(admitted) >= AFFORDABLE
    view = warm.org_credit_view(triad.org.pk)
    assert (view["spent"], view["reserved"]) == (spent, 0)

    assert settle_pending(warm.queue()) == len(admitted)
    assert Generation.objects.count() == len(admitted)
    assert org_balance_nanos(triad.org) == credit - spent >= 0
    call_command("ledger_verify")


def test_it_holds_a_key_limit_across_processes(triad: Triad, api_key: IssuedKey) -> None:
    credits_grant(organization=triad.org, amount_nanos=1000 * WORST_CASE, reason="plenty")
    key = dataclasses.replace(key_state(api_key), limit_nanos=5 * WORST_CASE, limit_reset="monthly")
    warm = RedisGate(settings.REDIS_URL)
    warm.org_balance_sync(triad.org.pk)
    warm.key_usage(key.key_id, key.key_hash, key.org_id)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(PROCESSES) as pool:
        per_process = pool.map(_gateway_process, [(key, 25, time.time() + 1.0, True)] * PROCESSES)
    results = [r for chunk in per_process for r in chunk]
    assert sum(1 for r in results if r[0] == 200) == 5
    assert {(s, c) for s, c, _ in results if s != 200} == {(402, "key_limit_exceeded")}
