"""What a card top-up may be and what it costs: the amount rules, the card fee, who may buy."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from billing.payments import stripe_api
from common.money import fee_nanos, usd_to_nanos
from organizations.models import Membership, Organization

CENT_NANOS = stripe_api.NANOS_PER_CENT
MIN_TOPUP_NANOS = usd_to_nanos(5)
MAX_TOPUP_NANOS = usd_to_nanos(10_000)
CARD_FEE_PERCENT = Decimal("5.5")
CARD_FEE_MIN_NANOS = usd_to_nanos("0.80")


class PaymentError(Exception):
    """A request the payment rules refuse; the message is shown to the user as is."""


@dataclass(frozen=True, slots=True)
class Quote:
    credit_nanos: int
    fee_nanos: int

    @property
    def total_nanos(self) -> int:
        return self.credit_nanos + self.fee_nanos


def card_fee_nanos(credit_nanos: int) -> int:
    """5.5% with a $0.80 minimum, rounded up to the cent because the card is charged in cents."""
    fee = max(CARD_FEE_MIN_NANOS, fee_nanos(credit_nanos, CARD_FEE_PERCENT))
    return -(-fee // CENT_NANOS) * CENT_NANOS


def topup_quote(amount_usd: str | Decimal | int) -> Quote:
    """Validate a requested credit amount ($5 to $10,000, whole cents) and price its fee."""
    try:
        credit = usd_to_nanos(str(amount_usd).strip().lstrip("$"))
    except (ValueError, InvalidOperation) as exc:
        raise PaymentError("Enter an amount in dollars, like 25 or 25.50.") from exc
    if credit % CENT_NANOS:
        raise PaymentError("Amounts are in whole cents.")
    if not MIN_TOPUP_NANOS <= credit <= MAX_TOPUP_NANOS:
        raise PaymentError("Buy between $5 and $10,000 of credits at a time.")
    return Quote(credit_nanos=credit, fee_nanos=card_fee_nanos(credit))


def manager_require(membership: Membership, organization: Organization) -> None:
    """Services check the role themselves too: they are called from more places than the views."""
    if membership.organization_id != organization.pk or not membership.can_manage:
        raise PaymentError("Only owners and admins can buy credits.")
