"""Auto top-up: "when the balance falls below X, buy Y" on the card saved at a checkout.

The beat task (payments.auto_topup_check) runs `auto_topup_check_all`; the charge is off-session.
"""

from __future__ import annotations

import logging
from decimal import InvalidOperation

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from billing.ledger import org_balance_nanos
from billing.models import AutoTopUpRule, TopUp
from billing.payments import stripe_api
from billing.payments.quotes import MAX_TOPUP_NANOS, PaymentError, card_fee_nanos, manager_require, topup_quote
from billing.payments.topups import auto_topup_fail, topup_fulfil
from billing.payments.webhooks import payment_events_replay_deferred
from common.money import usd_to_nanos
from organizations.audit import audit_record, audit_snapshot
from organizations.models import Membership, Organization

logger = logging.getLogger(__name__)
AUTO_TOPUP_AUDIT_FIELDS = ("enabled", "threshold_nanos", "amount_nanos")


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
    before = audit_snapshot(rule, AUTO_TOPUP_AUDIT_FIELDS) if rule.pk else None
    rule.enabled, rule.threshold_nanos, rule.amount_nanos = enabled, threshold, amount
    rule.updated_by = membership.user
    if enabled:
        rule.last_error, rule.last_error_at = "", None
    rule.save()
    after = audit_snapshot(rule, AUTO_TOPUP_AUDIT_FIELDS)
    audit_record(
        organization=organization,
        action="settings.auto_topup_changed",
        before=before,
        after=after,
        actor=membership.user,
    )
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

    Stripe replays a saved 5xx for a reused idempotency key, so retrying with the same key would
    fail forever. After a call without a definite answer (5xx, timeout, network error), the next
    run first looks the PaymentIntent up by the attempt's metadata: if Stripe has one, its status
    decides; only if Stripe has none is the charge retried, with a new key. After
    AUTO_TOPUP_MAX_ATTEMPTS calls the attempt gives up with a notice and an email to the owners.
    The partial unique index keeps a single attempt in flight per organization.
    """
    topup = _auto_topup_claim(organization_id)
    if topup is None:
        return None
    # One run at a time per attempt (the beat and an operator's retry): two runs that both found no
    # PaymentIntent would otherwise each charge with a new key.
    lock = f"billing:auto-topup:{topup.pk}"
    if not cache.add(lock, "1", timeout=RUN_LOCK_SECONDS):
        return topup
    try:
        return _auto_topup_attempt(topup)
    finally:
        cache.delete(lock)


def _auto_topup_attempt(topup: TopUp) -> TopUp:
    topup.refresh_from_db()
    if topup.status != TopUp.Status.PENDING:
        return topup
    rule = AutoTopUpRule.objects.get(organization_id=topup.organization_id)
    created_after = int(topup.created_at.timestamp()) - CLOCK_SKEW_SECONDS
    try:
        charge = None
        if topup.attempts > 0:
            charge = stripe_api.payment_intent_find(
                customer_id=rule.stripe_customer_id, topup_id=str(topup.public_id), created_after=created_after
            )
            if charge is None and topup.attempts >= settings.AUTO_TOPUP_MAX_ATTEMPTS:
                return _auto_topup_give_up(topup)
        if charge is None or charge.status == "canceled":
            charge = _auto_topup_charge(topup, rule)
    except stripe_api.StripeCallError as exc:
        if exc.retryable:
            logger.warning("auto top-up %s will be retried: %s", topup.public_id, exc)
            return topup
        auto_topup_fail(topup, str(exc))
        topup.refresh_from_db()
        return topup
    if charge.status in UNSETTLED:
        return topup  # Stripe is still working on it; the next run looks again
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        if locked.status != TopUp.Status.PENDING:
            return locked  # a webhook settled it meanwhile
        if charge.succeeded:
            topup_fulfil(locked, payment_intent_id=charge.payment_intent_id)
        elif charge.status == "requires_payment_method":
            auto_topup_fail(locked, "The card was declined.")
            locked.refresh_from_db()
        else:
            auto_topup_fail(locked, f"The bank wants the card confirmed ({charge.status}); buy credits once by hand.")
            locked.refresh_from_db()
    if charge.succeeded:
        # A refund or dispute webhook about this charge may have come in before we recorded it as paid.
        payment_events_replay_deferred(charge.payment_intent_id)
    return locked


# Longer than the calls a run makes (a lookup and a create, each bounded by STRIPE_TIMEOUT_SECONDS).
RUN_LOCK_SECONDS = 120
# Stripe statuses that are neither paid nor failed yet.
UNSETTLED = frozenset({"processing", "requires_confirmation", "requires_capture"})
# The lookup window starts a little before the attempt, in case our clock is ahead of Stripe's.
CLOCK_SKEW_SECONDS = 300


def _auto_topup_charge(topup: TopUp, rule: AutoTopUpRule) -> stripe_api.OffSessionCharge:
    """One create call with a key never used before for this attempt; the call is counted before it is made."""
    number = topup.attempts + 1
    key = f"autotopup:{topup.public_id}" if number == 1 else f"autotopup:{topup.public_id}:{number}"
    TopUp.objects.filter(pk=topup.pk).update(attempts=number, idempotency_key=key)
    topup.attempts, topup.idempotency_key = number, key
    return stripe_api.payment_intent_create_off_session(
        customer_id=rule.stripe_customer_id,
        payment_method_id=rule.stripe_payment_method_id,
        amount_nanos=topup.total_nanos,
        metadata={"org_id": str(topup.organization_id), "topup_id": str(topup.public_id), "source": "auto"},
        idempotency_key=key,
    )


def _auto_topup_give_up(topup: TopUp) -> TopUp:
    reason = f"Stripe did not complete the charge after {topup.attempts} tries; no money was taken."
    auto_topup_fail(topup, reason)
    topup.refresh_from_db()
    owners = Membership.objects.filter(organization_id=topup.organization_id, role=Membership.Role.OWNER)
    emails = [e for e in owners.values_list("user__email", flat=True) if e]
    if emails:
        org = topup.organization
        send_mail(
            f"Auto top-up for {org.name} is paused",
            f"We could not charge the saved card for {org.name}: {reason}\n\n"
            "Auto top-up is paused. Buy credits by hand or turn auto top-up on again on the Credits page.",
            None,
            emails,
        )
    return topup


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
