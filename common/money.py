"""Money units: integer nano-dollars everywhere, exact conversions to and from USD.

No floats in money: `nanos_to_usd_number` exists only for JSON output, where OpenRouter shows USD
as numbers, and its result is never fed back into an amount.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

NANOS_PER_USD = 1_000_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000  # catalog prices are per million tokens


def fee_nanos(amount_nanos: int, percent: int | Decimal) -> int:
    """A percentage fee, ceiled to the nano-dollar."""
    # Decimal's // truncates toward zero, so round the quotient explicitly.
    return int((Decimal(amount_nanos) * Decimal(percent) / 100).to_integral_value(rounding=ROUND_CEILING))


def usd_to_nanos(usd: Decimal | str | int) -> int:
    """Parse a USD amount exactly; fractions of a nano-dollar are refused rather than rounded."""
    value = Decimal(str(usd)) * NANOS_PER_USD
    if value != value.to_integral_value():
        raise ValueError(f"{usd} has more precision than a nano-dollar")
    return int(value)


def nanos_to_usd(nanos: int) -> Decimal:
    return Decimal(nanos) / NANOS_PER_USD


def nanos_to_usd_number(nanos: int) -> float:
    """For JSON responses only (OpenRouter shows money as USD numbers); never fed back into money.

    int / int is correctly rounded in Python, so this is the float nearest the exact amount, as
    `float(Decimal(nanos) / NANOS_PER_USD)` is, at a fifth of the cost (it runs four times per answer)."""
    return nanos / NANOS_PER_USD


def price_per_token_str(nanos_per_mtok: int) -> str:
    """OpenRouter's catalog format: USD per single token as a plain decimal string ("0.0000025")."""
    if nanos_per_mtok == 0:
        return "0"
    value = Decimal(nanos_per_mtok) / (NANOS_PER_USD * TOKENS_PER_PRICE_UNIT)
    return format(value.normalize(), "f")


def price_per_unit_str(nanos: int) -> str:
    if nanos == 0:
        return "0"
    return format((Decimal(nanos) / NANOS_PER_USD).normalize(), "f")
