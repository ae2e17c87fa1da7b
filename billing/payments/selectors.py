"""Payment reads for the pages, each scoped to one organization."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.models import AutoTopUpRule, ChainCursor, CryptoDeposit, DepositAddress, TopUp
from billing.payments import stripe_api
from organizations.models import Organization


def topup_list(*, organization: Organization) -> QuerySet[TopUp]:
    return TopUp.objects.filter(organization=organization).exclude(status=TopUp.Status.EXPIRED)


def auto_topup_rule_get(*, organization: Organization) -> AutoTopUpRule | None:
    return AutoTopUpRule.objects.filter(organization=organization).first()


def card_payments_configured() -> bool:
    return stripe_api.is_configured()


def crypto_deposit_list(*, organization: Organization) -> QuerySet[CryptoDeposit]:
    return CryptoDeposit.objects.filter(organization=organization).exclude(status=CryptoDeposit.Status.ORPHANED)


def deposit_address_list(*, organization: Organization) -> QuerySet[DepositAddress]:
    return DepositAddress.objects.filter(organization=organization).order_by("chain_id")


def chain_errors() -> dict[int, str]:
    """Chains the scanner could not reach on its last try, with the error (not organization data)."""
    return dict(ChainCursor.objects.exclude(last_error="").values_list("chain_id", "last_error"))
