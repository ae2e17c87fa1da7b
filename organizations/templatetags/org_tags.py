from __future__ import annotations

from decimal import Decimal

from django import template

from common.money import nanos_to_usd

register = template.Library()


@register.filter
def usd(nanos: int | None) -> str:
    """Nano-dollars as "$1,234.50": cents when exact, otherwise every significant digit (never rounded)."""
    if nanos is None:
        return ""
    value = nanos_to_usd(nanos)
    cents = value.quantize(Decimal("0.01"))
    text = f"{cents:,.2f}" if cents == value else f"{value.normalize():,f}"
    return f"${text}"
