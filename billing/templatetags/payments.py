"""`{% payments_panel %}`: the card and crypto section, loading its own data so any page can include it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import template

from billing.models import CryptoDeposit, DepositAddress
from billing.payments.chain import CHAIN_NAMES
from billing.payments.crypto import crypto_chains
from billing.payments.selectors import (
    auto_topup_rule_get,
    card_payments_configured,
    chain_errors,
    crypto_deposit_list,
    deposit_address_list,
    topup_list,
)
from common.money import NANOS_PER_USD

register = template.Library()


@dataclass(frozen=True, slots=True)
class ChainRow:
    chain_id: int
    name: str
    confirmations: int
    address: DepositAddress | None
    unavailable: bool = False


@register.filter
def usd(nanos: int | None) -> str:
    """Nano-dollars as "$1,234.56" (rounded half-up to the cent, for display only)."""
    value = (Decimal(nanos or 0) / NANOS_PER_USD).quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


@register.filter
def chain_name(chain_id: int) -> str:
    return CHAIN_NAMES.get(chain_id, str(chain_id))


@register.inclusion_tag("billing/payments/_panel.html", takes_context=True)
def payments_panel(context: template.Context) -> dict[str, Any]:
    organization = context["organization"]
    membership = context.get("membership")
    addresses = {a.chain_id: a for a in deposit_address_list(organization=organization)}
    down = chain_errors()
    chains = [
        ChainRow(cid, CHAIN_NAMES[cid], cfg.confirmations, addresses.get(cid), cid in down)
        for cid, cfg in crypto_chains().items()
    ]
    needed = {c.chain_id: c.confirmations for c in chains}
    deposits = list(crypto_deposit_list(organization=organization)[:50])
    return {
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
        "organization": organization,
        "can_buy": bool(membership and membership.can_manage),
        "card_configured": card_payments_configured(),
        "topups": list(topup_list(organization=organization)[:50]),
        "rule": auto_topup_rule_get(organization=organization),
        "chains": chains,
        "pending_deposits": [
            (d, needed.get(d.chain_id, 0)) for d in deposits if d.status == CryptoDeposit.Status.PENDING
        ],
        "done_deposits": [d for d in deposits if d.status != CryptoDeposit.Status.PENDING],
    }
