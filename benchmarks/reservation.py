"""Microseconds per admit+finish on the real Redis: the credit gate's cost on the request path.

    REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python benchmarks/reservation.py [--n 20000] [--concurrency 64]

It FLUSHES the Redis db it is given (it seeds a synthetic organization and key there): point it at a
scratch db. No database is needed: the gate's mirror is seeded directly.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402

from billing.gate import KeyState, RedisGate  # noqa: E402
from billing.selectors import OrgLedgerSnapshot  # noqa: E402
from billing.usage import UsageEvent  # noqa: E402

ORG, KEY = 900_000_001, "b" * 64


def seed(gate: RedisGate) -> KeyState:
    gate.sync.flushdb()
    credit = OrgLedgerSnapshot(credits_in_nanos=10**18, version=1, purchased_nanos=0, settled_usage_nanos=0)
    gate.org_mirror_load(ORG, credit)
    unused = {f"{kind}_{w}": 0 for kind in ("u", "b") for w in ("all", "d", "w", "m")}
    gate.key_mirror_load(ORG, KEY, unused, time.time())
    return KeyState(
        key_id=1,
        key_hash=KEY,
        org_id=ORG,
        limit_nanos=10**17,
        limit_reset="daily",
        include_byok_in_limit=False,
        user_id=None,
    )


def usage(i: int) -> UsageEvent:
    return UsageEvent(
        generation_id=f"gen-bench-{i}",
        organization_id=ORG,
        api_key_id=1,
        key_hash=KEY,
        user_id=None,
        model="openai/gpt-4o",
        provider_slug="openai",
        provider_name="OpenAI",
        endpoint_tag="openai",
        created_at=time.time(),
        prompt_tokens=120,
        completion_tokens=300,
        list_cost_nanos=3_300_000,
    )


async def one(gate: RedisGate, key: KeyState, i: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    admission = await gate.admit(reservation_id=f"r{i}", key=key, amount_nanos=8_000_000, is_free=False, is_byok=False)
    t1 = time.perf_counter()
    assert admission.ok
    await gate.finish(reservation_id=f"r{i}", key=key, event=usage(i))
    return t1 - t0, time.perf_counter() - t1


async def main(n: int, concurrency: int) -> None:
    gate = RedisGate(settings.REDIS_URL)
    key = seed(gate)
    before = _script_stats(gate)
    for i in range(200):  # warm the script cache and connections
        await one(gate, key, -i - 1)
    serial = [await one(gate, key, i) for i in range(n)]
    admit_us = [a * 1e6 for a, _ in serial]
    both_us = [(a + f) * 1e6 for a, f in serial]
    print(f"sequential, {n} requests, one connection:")
    print(f"  admit          median {statistics.median(admit_us):7.1f} us   p99 {_p99(admit_us):7.1f} us")
    print(f"  admit+finish   median {statistics.median(both_us):7.1f} us   p99 {_p99(both_us):7.1f} us")
    sem = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with sem:
            await one(gate, key, n + i)

    t0 = time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(n)))
    elapsed = time.perf_counter() - t0
    print(f"concurrent ({concurrency} in flight): {n / elapsed:,.0f} admit+finish pairs/s in one process")
    calls, usec = (a - b for a, b in zip(_script_stats(gate), before, strict=True))
    print(f"Redis server time per script call (admit or finish): {usec / max(calls, 1):.1f} us")
    gate.sync.flushdb()


def _script_stats(gate: RedisGate) -> tuple[int, int]:
    stats = gate.sync.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99) - 1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if not settings.REDIS_URL:
        raise SystemExit("set REDIS_URL to a scratch Redis db")
    asyncio.run(main(args.n, args.concurrency))
