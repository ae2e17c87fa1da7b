"""Shared parsing for the operator commands: one clear line on stderr and a non-zero exit on bad input."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.core.management.base import CommandError

from common.money import usd_to_nanos

EXIT_USAGE = 2  # bad input, like argparse
EXIT_NOT_FOUND = 1


def positive_usd_nanos(raw: str, what: str = "amount") -> int:
    """A strictly positive USD amount ("5", "0.25") as nano-dollars; anything else is a usage error."""
    try:
        value = Decimal(raw.strip())
    except InvalidOperation as exc:
        raise CommandError(f"{what} must be a number of US dollars, got {raw!r}", returncode=EXIT_USAGE) from exc
    if not value.is_finite() or value <= 0:
        raise CommandError(f"{what} must be greater than zero, got {raw!r}", returncode=EXIT_USAGE)
    try:
        return usd_to_nanos(value)
    except ValueError as exc:
        raise CommandError(f"{what} has more precision than a nano-dollar: {raw!r}", returncode=EXIT_USAGE) from exc
