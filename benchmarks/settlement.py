"""Usage events per second that one settlement worker posts to PostgreSQL (Generation + ledger entry each).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/h_gate REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python benchmarks/settlement.py [--n 5000] [--batch 500]

Migrates the database it is given and FLUSHES the Redis db: point both at scratch instances.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from billing.gate import KeyState, RedisGate  # noqa: E402
from billing.models import Generation  # noqa: E402
from billing.services import credits_grant  # noqa: E402
from billing.settlement import settle_batch  # noqa: E402
from common.money import NANOS_PER_USD  # noqa: E402
from organizations.models import Organization  # noqa: E402
from organizations.services import api_key_create  # noqa: E402
from tests.billing.support import event, key_state  # noqa: E402


async def enqueue(gate: RedisGate, n: int, key: KeyState) -> None:
    for i in range(n):
        assert (await gate.admit(reservation_id=f"r{i}", key=key, amount_nanos=9_000, is_free=False, is_byok=False)).ok
        await gate.finish(reservation_id=f"r{i}", key=key, event=event(key, 1_000 + i % 7_000))


def main(n: int, batch: int) -> None:
    call_command("migrate", verbosity=0)
    gate = RedisGate(settings.REDIS_URL)
    gate.sync.flushdb()
    org = Organization.objects.create(name="bench", slug=f"bench-{uuid.uuid4().hex[:10]}")
    credits_grant(organization=org, amount_nanos=1000 * NANOS_PER_USD, reason="benchmark")
    from asgiref.sync import async_to_sync

    async_to_sync(enqueue)(gate, n, key_state(api_key_create(organization=org, name="bench")))
    queue = gate.queue()
    before = Generation.objects.count()
    t0 = time.perf_counter()
    done = 0
    while done < n:
        done += settle_batch(queue, max_events=batch)
    elapsed = time.perf_counter() - t0
    assert Generation.objects.count() - before == n
    print(f"settled {n} usage events in batches of {batch}: {elapsed:.2f} s = {n / elapsed:,.0f} events/s (one worker)")
    call_command("ledger_verify")
    gate.sync.flushdb()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    main(args.n, args.batch)
