"""Auto top-up: "when the balance falls below X, buy Y" on the card saved at a checkout.

The beat task (payments.auto_topup_check) runs `auto_topup_check_all`; the charge is off-session.
"""

from __future__ import annotations

import logging
from decimal import InvalidOperation

from django.db import IntegrityError, transaction

from billing.ledger import org_balance_nanos
from billing.models import AutoTopUpRule, TopUp
from billing.payments import stripe_api
from billing.payments.quotes import MAX_TOPUP_NANOS, PaymentError, card_fee_nanos, manager_require, topup_quote
from billing.payments.topups import auto_topup_fail, topup_fulfil
from billing.payments.webhooks import payment_events_replay_deferred
from common.money import usd_to_nanos
from organizations.models import Membership, Organization

logger = logging.getLogger(__name__)


def auto_topup_rule_save(
    *, organization: Organization, membership: Membership, enabled: bool, threshold_usd: str, amount_usd: str
) -> AutoTopUpRule:
    """Owners and admins set "when the balance falls below X, buy Y" for the saved card."""
    manager_require(membership, organization)
    amount = topup_quote(amount_usd).credit_nanos
    try:
        threshold = usd_to_nanos(threshold_usd.strip().lstrip("$"))
    except (ValueError, InvalidOperation) as exc:
        raise PaymentError("Enter the threshold in dollars.") from exc
    if threshold < 0 or threshold > MAX_TOPUP_NANOS:
        raise PaymentError("The threshold must be between $0 and $10,000.")
    rule = AutoTopUpRule.objects.filter(organization=organization).first()
    if enabled and (rule is None or not rule.has_card):
        raise PaymentError("Save a card first: tick 'save this card' when you next buy credits.")
    if rule is None:
        rule = AutoTopUpRule(organization=organization)
    rule.enabled, rule.threshold_nanos, rule.amount_nanos = enabled, threshold, amount
    rule.updated_by = membership.user
    if enabled:
        rule.last_error, rule.last_error_at = "", None
    rule.save()
    return rule


def _auto_topup_claim(organization_id: int) -> TopUp | None:
    """The attempt to make now: the one still in flight, or a new one if the balance is low."""
    with transaction.atomic():
        rule = AutoTopUpRule.objects.select_for_update().filter(organization_id=organization_id).first()
        if rule is None or not rule.enabled or not rule.has_card:
            return None
        pending = TopUp.objects.filter(
            organization_id=organization_id, source=TopUp.Source.AUTO, status=TopUp.Status.PENDING
        ).first()
        if pending is not None:
            return pending
        if org_balance_nanos(rule.organization) >= rule.threshold_nanos:
            return None
        return TopUp.objects.create(
            organization=rule.organization,
            source=TopUp.Source.AUTO,
            credit_nanos=rule.amount_nanos,
            fee_nanos=card_fee_nanos(rule.amount_nanos),
        )


def auto_topup_run(*, organization_id: int) -> TopUp | None:
    """One auto top-up attempt for an organization; safe to run concurrently and to repeat.

    The Stripe call is keyed by the attempt, so a retry after a lost answer cannot charge twice,
    and the partial unique index keeps a single attempt in flight per organization.
    """
    topup = _auto_topup_claim(organization_id)
    if topup is None:
        return None
    rule = AutoTopUpRule.objects.get(organization_id=organization_id)
    try:
        charge = stripe_api.payment_intent_create_off_session(
            customer_id=rule.stripe_customer_id,
            payment_method_id=rule.stripe_payment_method_id,
            amount_nanos=topup.total_nanos,
            metadata={"org_id": str(organization_id), "topup_id": str(topup.public_id), "source": "auto"},
            idempotency_key=f"autotopup:{topup.public_id}",
        )
    except stripe_api.StripeCallError as exc:
        if exc.retryable:
            logger.warning("auto top-up %s will be retried: %s", topup.public_id, exc)
            return topup
        auto_topup_fail(topup, str(exc))
        topup.refresh_from_db()
        return topup
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        if charge.succeeded:
            topup_fulfil(locked, payment_intent_id=charge.payment_intent_id)
        else:
            auto_topup_fail(locked, f"The bank wants the card confirmed ({charge.status}); buy credits once by hand.")
            locked.refresh_from_db()
    if charge.succeeded:
        # A refund or dispute webhook about this charge may have come in before we recorded it as paid.
        payment_events_replay_deferred(charge.payment_intent_id)
    return locked


def auto_topup_check_all() -> int:
    """Run every enabled rule whose organization is below its threshold. Returns attempts made."""
    attempts = 0
    for org_id in AutoTopUpRule.objects.filter(enabled=True).values_list("organization_id", flat=True):
        try:
            if auto_topup_run(organization_id=org_id) is not None:
                attempts += 1
        except IntegrityError:
            continue  # another worker claimed this organization's attempt at the same moment
    return attempts
