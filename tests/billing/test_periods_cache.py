"""The Redis gate computes period boundaries once per UTC day, not per request, and gets them right."""

from __future__ import annotations

import random

from billing.gate import rules
from billing.gate.redis_gate import periods_at

MIDNIGHT = 1_800_057_600.0  # 2027-01-16 00:00:00 UTC


def test_it_matches_the_rule_on_both_sides_of_midnight_and_over_years() -> None:
    instants = [MIDNIGHT - 0.001, MIDNIGHT, MIDNIGHT + 0.001, MIDNIGHT + 86_399.999, MIDNIGHT + 86_400]
    rng = random.Random(14)
    instants += [rng.uniform(1.6e9, 2.0e9) for _ in range(2_000)]
    for at in instants:
        assert periods_at(at) == rules.Periods.at(at), at


def test_it_computes_once_per_day() -> None:
    first = periods_at(MIDNIGHT + 10)
    assert periods_at(MIDNIGHT + 50_000) is first
    assert periods_at(MIDNIGHT + 86_400) is not first
    # A month (and a week) turns over at a midnight too, so a day's cache never straddles one.
    last_second = 1_801_439_999.0  # 2027-01-31 23:59:59 UTC
    assert periods_at(last_second).month == "m202701"
    assert periods_at(last_second + 1).month == "m202702"
