"""The embedded gate's free-model and BYOK counters survive a restart of `make run` (issue: free-model
limits reset whenever the server restarted)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from billing.gate import KeyState, keys, rules
from billing.gate.contract import ADMITTED
from billing.gate.memory_gate import MemoryGate

KEY = KeyState(
    key_id=1, key_hash="h" * 64, org_id=7, limit_nanos=None, limit_reset=None, include_byok_in_limit=False, user_id=None
)


def _admit_free(gate: MemoryGate, n: int) -> None:
    async def main() -> None:
        for i in range(n):
            verdict = await gate.admit(reservation_id=f"r{i}", key=KEY, amount_nanos=0, is_free=True, is_byok=False)
            assert verdict == ADMITTED

    asyncio.run(main())


@pytest.mark.django_db
def test_free_requests_today_survive_a_restart(tmp_path: Path, settings: Settings) -> None:
    settings.FREE_MODEL_RPD_NO_CREDITS = 3
    settings.FREE_MODEL_RPM = 100
    path = tmp_path / "gate-counters.json"
    first = MemoryGate(counters_file=path)
    _admit_free(first, 2)
    assert first.free_requests_today(KEY.org_id) == 2
    first.save_counters(force=True)

    restarted = MemoryGate(counters_file=path)
    assert restarted.free_requests_today(KEY.org_id) == 2
    _admit_free(restarted, 1)
    assert restarted.free_requests_today(KEY.org_id) == 3


def test_other_days_counters_are_dropped_on_load(tmp_path: Path) -> None:
    path = tmp_path / "gate-counters.json"
    today = rules.Periods.at(rules.now()).day
    path.write_text(json.dumps({keys.free_day(7, "d19990101"): 9, keys.free_day(7, today): 4, "gate:other": 1}))
    gate = MemoryGate(counters_file=path)
    assert gate.free_requests_today(7) == 4
    assert gate._counts[keys.free_day(7, "d19990101")] == 0
