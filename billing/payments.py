"""Buying credits by card: Checkout top-ups, the Stripe webhook's effects, refunds, disputes, auto top-up.

Ledger entries (all through `ledger_post`, keys in brackets):
- paid top-up [topup:<id>]: payment_clearing -(credit+fee), org_credits +credit, fee_revenue +fee
- refund, cumulative R of the charge T [refund:<id>:<R>]: the delta since the last refund, split
  credit*R/T from org_credits and the rest from fee_revenue, back to payment_clearing
- dispute of D opened [dispute:<d>:hold]: c = credit*D/T moves org_credits -> disputes_held
- dispute won [dispute:<d>:won]: c moves back; lost [dispute:<d>:lost]: disputes_held -c,
  fee_revenue -(D-c), payment_clearing +D
Refunds and disputes may drive the balance negative: the gateway then answers 402 until a top-up.
Crypto deposits live in billing/crypto_scan.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from billing.ledger import Leg, ledger_post, org_balance_nanos
from billing.models import AutoTopUpRule, LedgerAccount, LedgerEntry, StripeEvent, TopUp
from billing.providers import stripe as stripe_edge
from common.money import fee_nanos, usd_to_nanos
from organizations.models import Membership, Organization

logger = logging.getLogger(__name__)
Kind = LedgerAccount.Kind

CENT_NANOS = stripe_edge.NANOS_PER_CENT
MIN_TOPUP_NANOS = usd_to_nanos(5)
MAX_TOPUP_NANOS = usd_to_nanos(10_000)
CARD_FEE_PERCENT = Decimal("5.5")
CARD_FEE_MIN_NANOS = usd_to_nanos("0.80")


class PaymentError(Exception):
    """A request the payment rules refuse; the message is shown to the user as is."""


# --- quotes ------------------------------------------------------------------------------------


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


# --- Checkout ----------------------------------------------------------------------------------


def _require_manager(membership: Membership, organization: Organization) -> None:
    if membership.organization_id != organization.pk or not membership.can_manage:
        raise PaymentError("Only owners and admins can buy credits.")


def topup_create_checkout(
    *,
    organization: Organization,
    membership: Membership,
    quote: Quote,
    success_url: str,
    cancel_url: str,
    save_card: bool = False,
) -> tuple[TopUp, str]:
    """Record a pending top-up, then open a Checkout Session for it. Returns (top-up, checkout URL).

    The session is keyed by the top-up id, so a retried request cannot open a second payment.
    """
    _require_manager(membership, organization)
    if not stripe_edge.is_configured():
        raise PaymentError("Card payments are not configured.")
    topup = TopUp.objects.create(
        organization=organization,
        created_by=membership.user,
        credit_nanos=quote.credit_nanos,
        fee_nanos=quote.fee_nanos,
        save_card=save_card,
    )
    metadata = {
        "org_id": str(organization.pk),
        "topup_id": str(topup.public_id),
        "credit_nanos": str(quote.credit_nanos),
        "save_card": "1" if save_card else "0",
    }
    try:
        session = stripe_edge.checkout_session_create(
            credit_nanos=quote.credit_nanos,
            fee_nanos=quote.fee_nanos,
            metadata=metadata,
            success_url=success_url,
            cancel_url=cancel_url,
            save_card=save_card,
            customer_email=membership.user.email,
            idempotency_key=f"topup:{topup.public_id}",
        )
    except stripe_edge.StripeCallError as exc:
        TopUp.objects.filter(pk=topup.pk).update(status=TopUp.Status.FAILED, failure_reason=str(exc)[:500])
        raise PaymentError("The card payment could not be started. Please try again.") from exc
    TopUp.objects.filter(pk=topup.pk).update(stripe_session_id=session.id)
    topup.stripe_session_id = session.id
    return topup, session.url


# --- webhook events ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    outcome: str
    note: str = ""


APPLIED = Outcome(StripeEvent.Outcome.APPLIED)


def payment_event_apply(event: stripe_edge.WebhookEvent) -> StripeEvent:
    """Apply one verified Stripe event exactly once (deduplicated on its id).

    Runs in one transaction with the event row: if applying fails, nothing is stored, the webhook
    answers 500 and Stripe delivers again. Events about a charge whose top-up is not paid yet
    (out-of-order delivery) are stored as deferred and replayed when the top-up is paid.
    """
    existing = StripeEvent.objects.filter(event_id=event.id).first()
    if existing is not None:
        if existing.outcome == StripeEvent.Outcome.APPLIED and event.type in _PAYING_EVENTS:
            # A redelivery finishes a replay that an earlier delivery may have left half done.
            _replay_deferred(event.payment_intent_id)
        return existing
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event.id,
                type=event.type,
                livemode=event.livemode,
                stripe_created=event.created,
                payment_intent_id=event.payment_intent_id,
                outcome=StripeEvent.Outcome.IGNORED,
                payload=event.payload,
            )
            result = _dispatch(event)
            row.outcome, row.note = result.outcome, result.note[:500]
            row.processed_at = timezone.now()
            row.save(update_fields=["outcome", "note", "processed_at"])
    except IntegrityError:
        # The same event delivered twice at once: the other delivery stored (and applied) it.
        return StripeEvent.objects.get(event_id=event.id)
    if result.outcome != StripeEvent.Outcome.APPLIED:
        logger.info("stripe event %s (%s) %s: %s", event.id, event.type, result.outcome, result.note)
    elif event.type in _PAYING_EVENTS and event.payment_intent_id:
        _replay_deferred(event.payment_intent_id)
    return row


_PAYING_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded", "payment_intent.succeeded"}
)


def _dispatch(event: stripe_edge.WebhookEvent) -> Outcome:
    t = event.type
    if t in ("checkout.session.completed", "checkout.session.async_payment_succeeded") and event.session:
        return _session_paid(event.session)
    if t == "checkout.session.expired" and event.session:
        TopUp.objects.filter(stripe_session_id=event.session.id, status=TopUp.Status.PENDING).update(
            status=TopUp.Status.EXPIRED
        )
        return APPLIED
    if t == "payment_intent.succeeded" and event.payment_intent:
        return _intent_succeeded(event.payment_intent)
    if t == "payment_intent.payment_failed" and event.payment_intent:
        return _intent_failed(event.payment_intent)
    charge, dispute = event.charge, event.dispute
    if t == "charge.refunded" and charge:
        return _with_topup(event, lambda topup: _refund_to(topup, charge.amount_refunded_nanos, charge))
    if t == "charge.dispute.created" and dispute:
        return _with_topup(event, lambda topup: _dispute_hold(topup, dispute))
    if t == "charge.dispute.closed" and dispute:
        return _with_topup(event, lambda topup: _dispute_close(topup, dispute))
    return Outcome(StripeEvent.Outcome.IGNORED, "not an event we act on")


def _with_topup(event: stripe_edge.WebhookEvent, apply: Callable[[TopUp], Outcome]) -> Outcome:
    pi = event.payment_intent_id
    topup = TopUp.objects.select_for_update().filter(stripe_payment_intent_id=pi).first() if pi else None
    if topup is None or topup.status != TopUp.Status.PAID:
        return Outcome(StripeEvent.Outcome.DEFERRED, f"no paid top-up for payment intent {pi!r} yet")
    return apply(topup)


def _session_paid(session: stripe_edge.SessionInfo) -> Outcome:
    if session.mode != "payment":
        return Outcome(StripeEvent.Outcome.IGNORED, f"{session.mode} session")
    topup = TopUp.objects.select_for_update().filter(stripe_session_id=session.id).first()
    if topup is None:
        # The session id is saved after Stripe answers; if that answer was lost, the metadata still points here.
        topup = _topup_from_metadata(session.metadata)
    if topup is None:
        return Outcome(StripeEvent.Outcome.IGNORED, f"unknown checkout session {session.id}")
    if session.payment_status != "paid":
        return Outcome(StripeEvent.Outcome.IGNORED, f"session not paid ({session.payment_status})")
    if session.currency != "usd" or session.amount_total_nanos != topup.total_nanos:
        logger.error("checkout session %s amount does not match top-up %s", session.id, topup.public_id)
        return Outcome(StripeEvent.Outcome.REJECTED, "amount or currency differs from the top-up")
    if topup.stripe_session_id is None:
        topup.stripe_session_id = session.id
        topup.save(update_fields=["stripe_session_id"])
    _topup_fulfil(topup, payment_intent_id=session.payment_intent_id)
    return APPLIED


def _topup_from_metadata(metadata: dict[str, str]) -> TopUp | None:
    try:
        public_id = uuid.UUID(metadata.get("topup_id", ""))
    except ValueError:
        return None
    topup = TopUp.objects.select_for_update().filter(public_id=public_id).first()
    if topup is not None and metadata.get("org_id") not in (None, str(topup.organization_id)):
        logger.error("stripe metadata names org %s for top-up %s", metadata.get("org_id"), public_id)
        return None
    return topup


def _intent_succeeded(intent: stripe_edge.PaymentIntentInfo) -> Outcome:
    topup = TopUp.objects.select_for_update().filter(stripe_payment_intent_id=intent.id).first()
    topup = topup or _topup_from_metadata(intent.metadata)
    if topup is None:
        return Outcome(StripeEvent.Outcome.IGNORED, f"unknown payment intent {intent.id}")
    if intent.amount_nanos != topup.total_nanos:
        logger.error("payment intent %s amount does not match top-up %s", intent.id, topup.public_id)
        return Outcome(StripeEvent.Outcome.REJECTED, "amount differs from the top-up")
    _topup_fulfil(topup, payment_intent_id=intent.id)
    if topup.save_card and intent.customer_id and intent.payment_method_id:
        _card_save(topup.organization, intent.customer_id, intent.payment_method_id)
    return APPLIED


def _intent_failed(intent: stripe_edge.PaymentIntentInfo) -> Outcome:
    topup = _topup_from_metadata(intent.metadata)
    if topup is None or topup.status != TopUp.Status.PENDING:
        return Outcome(StripeEvent.Outcome.IGNORED, "no pending top-up")
    if topup.source == TopUp.Source.AUTO:
        _auto_topup_failed(topup, intent.error_message or "The card was declined.")
    return APPLIED


def _topup_fulfil(topup: TopUp, *, payment_intent_id: str) -> None:
    """pending -> paid, crediting once. The caller holds the top-up's row lock."""
    if topup.status == TopUp.Status.PAID:
        return
    topup.status = TopUp.Status.PAID
    topup.paid_at = timezone.now()
    topup.stripe_payment_intent_id = payment_intent_id or topup.stripe_payment_intent_id
    topup.failure_reason = ""
    topup.save(update_fields=["status", "paid_at", "stripe_payment_intent_id", "failure_reason"])
    org = topup.organization
    ledger_post(
        idempotency_key=f"topup:{topup.public_id}",
        kind=LedgerEntry.Kind.TOPUP,
        organization=org,
        legs=[
            Leg(Kind.PAYMENT_CLEARING, -topup.total_nanos),
            Leg(Kind.ORG_CREDITS, topup.credit_nanos, org),
            Leg(Kind.FEE_REVENUE, topup.fee_nanos),
        ],
        memo=f"Card top-up {topup.public_id}",
    )


def _replay_deferred(payment_intent_id: str) -> None:
    """Apply the refund and dispute events that arrived before the payment, oldest first."""
    for row in StripeEvent.objects.filter(
        payment_intent_id=payment_intent_id, outcome=StripeEvent.Outcome.DEFERRED
    ).order_by("stripe_created", "id"):
        event = stripe_edge.webhook_event_from_dict(row.payload)
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=row.pk)
            if locked.outcome != StripeEvent.Outcome.DEFERRED:
                continue
            result = _dispatch(event)
            locked.outcome, locked.note, locked.processed_at = result.outcome, result.note[:500], timezone.now()
            locked.save(update_fields=["outcome", "note", "processed_at"])


# --- refunds and disputes ----------------------------------------------------------------------


def _split(topup: TopUp, charge_nanos: int) -> tuple[int, int]:
    """The (credit, fee) parts of `charge_nanos` of this top-up's charge, in proportion."""
    credit = topup.credit_nanos * charge_nanos // topup.total_nanos
    return credit, charge_nanos - credit


def _refund_to(topup: TopUp, cumulative_nanos: int, charge: stripe_edge.ChargeInfo | None = None) -> Outcome:
    """Bring the reversed credit up to a cumulative refunded amount; stale or repeated totals do nothing."""
    if charge is not None and charge.receipt_url and not topup.receipt_url:
        topup.receipt_url = charge.receipt_url[:500]
    cumulative = min(cumulative_nanos, topup.total_nanos)
    delta = cumulative - topup.refunded_nanos
    if delta <= 0:
        topup.save(update_fields=["receipt_url"])
        return Outcome(StripeEvent.Outcome.APPLIED, "refund already reflected")
    credit_target, _ = _split(topup, cumulative)
    credit_delta = credit_target - topup.credit_reversed_nanos
    org = topup.organization
    ledger_post(
        idempotency_key=f"refund:{topup.public_id}:{cumulative}",
        kind=LedgerEntry.Kind.REFUND,
        organization=org,
        legs=[
            Leg(Kind.PAYMENT_CLEARING, delta),
            Leg(Kind.ORG_CREDITS, -credit_delta, org),
            Leg(Kind.FEE_REVENUE, -(delta - credit_delta)),
        ],
        memo=f"Refund of card top-up {topup.public_id}",
    )
    topup.refunded_nanos, topup.credit_reversed_nanos = cumulative, credit_target
    topup.save(update_fields=["refunded_nanos", "credit_reversed_nanos", "receipt_url"])
    return APPLIED


def _dispute_hold(topup: TopUp, dispute: stripe_edge.DisputeInfo) -> Outcome:
    amount = min(dispute.amount_nanos, topup.total_nanos - topup.refunded_nanos)
    held, _ = _split(topup, max(amount, 0))
    org = topup.organization
    _, created = ledger_post(
        idempotency_key=f"dispute:{dispute.id}:hold",
        kind=LedgerEntry.Kind.DISPUTE,
        organization=org,
        legs=[Leg(Kind.ORG_CREDITS, -held, org), Leg(Kind.DISPUTES_HELD, held, org)],
        memo=f"Dispute {dispute.id} opened on top-up {topup.public_id}",
    )
    if created:
        topup.dispute_id, topup.disputed_credit_nanos = dispute.id, held
        topup.dispute_status = dispute.status
        topup.save(update_fields=["dispute_id", "disputed_credit_nanos", "dispute_status"])
        # A disputed card must not be charged again automatically.
        AutoTopUpRule.objects.filter(organization=org, enabled=True).update(
            enabled=False, last_error="A card payment is disputed, so auto top-up is off.", last_error_at=timezone.now()
        )
    return APPLIED


def _dispute_close(topup: TopUp, dispute: stripe_edge.DisputeInfo) -> Outcome:
    _dispute_hold(topup, dispute)  # a "closed" delivered before its "created" still holds first
    held, org = topup.disputed_credit_nanos, topup.organization
    if dispute.status in ("won", "warning_closed"):
        legs = [Leg(Kind.DISPUTES_HELD, -held, org), Leg(Kind.ORG_CREDITS, held, org)]
        key, memo = f"dispute:{dispute.id}:won", f"Dispute {dispute.id} won"
    elif dispute.status == "lost":
        amount = min(dispute.amount_nanos, topup.total_nanos - topup.refunded_nanos)
        fee_part = max(amount, 0) - held
        legs = [
            Leg(Kind.DISPUTES_HELD, -held, org),
            Leg(Kind.FEE_REVENUE, -fee_part),
            Leg(Kind.PAYMENT_CLEARING, amount),
        ]
        key, memo = f"dispute:{dispute.id}:lost", f"Dispute {dispute.id} lost"
    else:
        return Outcome(StripeEvent.Outcome.IGNORED, f"dispute closed as {dispute.status}")
    ledger_post(idempotency_key=key, kind=LedgerEntry.Kind.DISPUTE, organization=org, legs=legs, memo=memo)
    topup.dispute_status = dispute.status
    topup.save(update_fields=["dispute_status"])
    return APPLIED


def topup_refund(*, topup: TopUp, amount_nanos: int, actor: User | None) -> TopUp:
    """Operator refund: refund the card through Stripe, then reverse the matching credit.

    Stripe's own `charge.refunded` for this refund later carries the same cumulative total, so it
    finds nothing left to reverse.
    """
    if amount_nanos <= 0 or amount_nanos % CENT_NANOS:
        raise PaymentError("Refund a positive amount in whole cents.")
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        if locked.status != TopUp.Status.PAID or not locked.stripe_payment_intent_id:
            raise PaymentError("Only a paid card top-up can be refunded.")
        if amount_nanos > locked.total_nanos - locked.refunded_nanos:
            raise PaymentError("That is more than is left to refund.")
        cumulative = locked.refunded_nanos + amount_nanos
    try:
        stripe_edge.refund_create(
            payment_intent_id=locked.stripe_payment_intent_id,
            amount_nanos=amount_nanos,
            metadata={"topup_id": str(locked.public_id), "by": str(actor.pk if actor else "")},
            idempotency_key=f"refund:{locked.public_id}:{cumulative}",
        )
    except stripe_edge.StripeCallError as exc:
        raise PaymentError(f"Stripe refused the refund: {exc}") from exc
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        _refund_to(locked, cumulative)
    return locked


# --- auto top-up -------------------------------------------------------------------------------


def _card_save(organization: Organization, customer_id: str, payment_method_id: str) -> None:
    rule, _ = AutoTopUpRule.objects.get_or_create(
        organization=organization,
        defaults={"threshold_nanos": usd_to_nanos(5), "amount_nanos": usd_to_nanos(25)},
    )
    rule.stripe_customer_id, rule.stripe_payment_method_id = customer_id, payment_method_id
    rule.save(update_fields=["stripe_customer_id", "stripe_payment_method_id", "updated_at"])


def auto_topup_rule_save(
    *, organization: Organization, membership: Membership, enabled: bool, threshold_usd: str, amount_usd: str
) -> AutoTopUpRule:
    """Owners and admins set "when the balance falls below X, buy Y" for the saved card."""
    _require_manager(membership, organization)
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


def _auto_topup_failed(topup: TopUp, reason: str) -> None:
    TopUp.objects.filter(pk=topup.pk).update(status=TopUp.Status.FAILED, failure_reason=reason[:500])
    message = f"Auto top-up failed: {reason} Auto top-up is paused until you turn it on again."
    AutoTopUpRule.objects.filter(organization_id=topup.organization_id).update(
        enabled=False, last_error=message[:500], last_error_at=timezone.now()
    )


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
        charge = stripe_edge.payment_intent_create_off_session(
            customer_id=rule.stripe_customer_id,
            payment_method_id=rule.stripe_payment_method_id,
            amount_nanos=topup.total_nanos,
            metadata={"org_id": str(organization_id), "topup_id": str(topup.public_id), "source": "auto"},
            idempotency_key=f"autotopup:{topup.public_id}",
        )
    except stripe_edge.StripeCallError as exc:
        if exc.retryable:
            logger.warning("auto top-up %s will be retried: %s", topup.public_id, exc)
            return topup
        _auto_topup_failed(topup, str(exc))
        topup.refresh_from_db()
        return topup
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        if charge.succeeded:
            _topup_fulfil(locked, payment_intent_id=charge.payment_intent_id)
        else:
            _auto_topup_failed(
                locked, f"The bank wants the card confirmed ({charge.status}); buy credits once by hand."
            )
            locked.refresh_from_db()
    if charge.succeeded:
        _replay_deferred(charge.payment_intent_id)
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


# --- reads (scoped to the organization) --------------------------------------------------------


def topup_list(*, organization: Organization) -> QuerySet[TopUp]:
    return TopUp.objects.filter(organization=organization).exclude(status=TopUp.Status.EXPIRED)


def auto_topup_rule_get(*, organization: Organization) -> AutoTopUpRule | None:
    return AutoTopUpRule.objects.filter(organization=organization).first()


def card_payments_configured() -> bool:
    return stripe_edge.is_configured()
