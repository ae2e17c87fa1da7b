"""The one money formatting place: balances to the cent, per-request costs with significant digits."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from analytics.templatetags.money import format_usd_cents, format_usd_cost


@pytest.mark.parametrize(
    ("nanos", "cents", "cost"),
    [
        (20_295, "$0.00", "$0.0000203"),
        (9_987_819_060, "$9.99", "$9.99"),
        (12_345_678, "$0.01", "$0.0123"),
        (20_000, "$0.00", "$0.00002"),
        (123_456_789_000, "$123.46", "$123.46"),
        (1_234_567_890_000, "$1,234.57", "$1,234.57"),
        (-5_000_000, "-$0.01", "-$0.005"),
        (0, "$0.00", "$0.00"),
    ],
)
def test_it_formats_balances_and_costs(nanos: int, cents: str, cost: str) -> None:
    assert (format_usd_cents(nanos), format_usd_cost(nanos)) == (cents, cost)


def test_templates_load_it_by_name() -> None:
    rendered = Template("{% load money %}{{ a|usd_cents }} {{ b|usd_cost }} {{ c|usd_cost }}").render(
        Context({"a": 9_987_819_060, "b": 20_295, "c": None})
    )
    assert rendered == "$9.99 $0.0000203 "
