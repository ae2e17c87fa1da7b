"""`{% load money %}`: the one place templates turn nano-dollars into text.

- `usd_cents`: balances, limits, totals and payments, to the cent ("$9.99", "-$1,234.50").
- `usd_cost`: one request's cost, with three significant digits and at least cents ("$0.0000203",
  "$0.0123", "$1.23"), so a tiny charge is neither "$0.00" nor nine decimals of noise.

Display only: rounded half-up, never fed back into an amount (amounts stay integer nano-dollars).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django import template

from common.money import nanos_to_usd

register = template.Library()

COST_SIGNIFICANT_DIGITS = 3


def _signed(value: Decimal, text: str) -> str:
    return f"-${text}" if value < 0 else f"${text}"


def format_usd_cents(nanos: int | None) -> str:
    if nanos is None:
        return ""
    value = nanos_to_usd(nanos).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return _signed(value, f"{abs(value):,.2f}")


def format_usd_cost(nanos: int | None) -> str:
    if nanos is None:
        return ""
    value = nanos_to_usd(nanos)
    if value == 0:
        return "$0.00"
    # adjusted() is the power of ten of the leading digit: 0.0000203 -> -5, 1.23 -> 0.
    decimals = max(2, COST_SIGNIFICANT_DIGITS - 1 - value.adjusted())
    rounded = abs(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = f"{rounded:,f}"
    if "." in text:  # drop zeros past the cents: "0.0000200" -> "0.00002"
        whole, frac = text.split(".")
        text = f"{whole}.{frac[:2]}{frac[2:].rstrip('0')}"
    return _signed(value, text)


register.filter("usd_cents", format_usd_cents)
register.filter("usd_cost", format_usd_cost)
