"""Stripe events, applied exactly once: which top-up an event is about, and what it does to it.

The HTTP endpoint is `stripe_webhook` in views.py; the effects themselves are in topups.py.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import StripeEvent, TopUp
from billing.payments import stripe_api
from billing.payments.topups import (
    APPLIED,
    Outcome,
    auto_topup_card_save,
    auto_topup_fail,
    topup_dispute_close,
    topup_dispute_hold,
    topup_fulfil,
    topup_refund_record,
)

logger = logging.getLogger(__name__)

_PAYING_EVENTS = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded", "payment_intent.succeeded"}
)


def payment_event_apply(event: stripe_api.WebhookEvent) -> StripeEvent:
    """Apply one verified Stripe event exactly once (deduplicated on its id).

    Runs in one transaction with the event row: if applying fails, nothing is stored, the webhook
    answers 500 and Stripe delivers again. Events about a charge whose top-up is not paid yet
    (out-of-order delivery) are stored as deferred and replayed when the top-up is paid.
    """
    existing = StripeEvent.objects.filter(event_id=event.id).first()
    if existing is not None:
        if existing.outcome == StripeEvent.Outcome.APPLIED and event.type in _PAYING_EVENTS:
            # A redelivery finishes a replay that an earlier delivery may have left half done.
            payment_events_replay_deferred(event.payment_intent_id)
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
        payment_events_replay_deferred(event.payment_intent_id)
    return row


# Refund and dispute events are replayed when their payment is applied, whether they were deferred
# or ignored as unrelated (an unknown payment intent can still turn out to be ours).
_AFTER_PAYMENT = frozenset({"charge.refunded", "charge.dispute.created", "charge.dispute.closed"})
_REPLAYABLE = [StripeEvent.Outcome.DEFERRED, StripeEvent.Outcome.IGNORED]
# Stripe stops redelivering after about 3 days; a deferred event still unmatched then is not ours.
DEFERRED_MAX_AGE = timedelta(days=3)


def payment_events_replay_deferred(payment_intent_id: str) -> None:
    """Apply the refund and dispute events that arrived before the payment, oldest first."""
    if not payment_intent_id:
        return
    for row in StripeEvent.objects.filter(
        payment_intent_id=payment_intent_id, outcome__in=_REPLAYABLE, type__in=_AFTER_PAYMENT
    ).order_by("stripe_created", "id"):
        event = stripe_api.webhook_event_from_dict(row.payload)
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=row.pk)
            if locked.outcome not in _REPLAYABLE:
                continue
            result = _dispatch(event)
            locked.outcome, locked.note, locked.processed_at = result.outcome, result.note[:500], timezone.now()
            locked.save(update_fields=["outcome", "note", "processed_at"])


def _dispatch(event: stripe_api.WebhookEvent) -> Outcome:
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
        return _with_topup(event, lambda topup: topup_refund_record(topup, charge.amount_refunded_nanos, charge))
    if t == "charge.dispute.created" and dispute:
        return _with_topup(event, lambda topup: topup_dispute_hold(topup, dispute))
    if t == "charge.dispute.closed" and dispute:
        return _with_topup(event, lambda topup: topup_dispute_close(topup, dispute))
    return Outcome(StripeEvent.Outcome.IGNORED, "not an event we act on")


def payment_events_expire_deferred() -> int:
    """Deferred events whose payment never became a top-up of ours within Stripe's retry horizon: ignored."""
    return StripeEvent.objects.filter(
        outcome=StripeEvent.Outcome.DEFERRED, received_at__lt=timezone.now() - DEFERRED_MAX_AGE
    ).update(outcome=StripeEvent.Outcome.IGNORED, note="no top-up of ours was paid with this payment intent")


def _with_topup(event: stripe_api.WebhookEvent, apply: Callable[[TopUp], Outcome]) -> Outcome:
    pi = event.payment_intent_id
    topup = TopUp.objects.select_for_update().filter(stripe_payment_intent_id=pi).first() if pi else None
    if topup is None:
        # Our pending top-ups learn their payment intent only when paid; with none pending, it is not ours.
        if not TopUp.objects.filter(status=TopUp.Status.PENDING, stripe_payment_intent_id__isnull=True).exists():
            return Outcome(StripeEvent.Outcome.IGNORED, f"payment intent {pi!r} is not a top-up of ours")
        return Outcome(StripeEvent.Outcome.DEFERRED, f"no paid top-up for payment intent {pi!r} yet")
    if topup.status != TopUp.Status.PAID:
        return Outcome(StripeEvent.Outcome.DEFERRED, f"top-up for payment intent {pi!r} is {topup.status}")
    return apply(topup)


def _session_paid(session: stripe_api.SessionInfo) -> Outcome:
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
    topup_fulfil(topup, payment_intent_id=session.payment_intent_id)
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


def _intent_succeeded(intent: stripe_api.PaymentIntentInfo) -> Outcome:
    topup = TopUp.objects.select_for_update().filter(stripe_payment_intent_id=intent.id).first()
    topup = topup or _topup_from_metadata(intent.metadata)
    if topup is None:
        return Outcome(StripeEvent.Outcome.IGNORED, f"unknown payment intent {intent.id}")
    if intent.amount_nanos != topup.total_nanos:
        logger.error("payment intent %s amount does not match top-up %s", intent.id, topup.public_id)
        return Outcome(StripeEvent.Outcome.REJECTED, "amount differs from the top-up")
    topup_fulfil(topup, payment_intent_id=intent.id)
    if topup.save_card and intent.customer_id and intent.payment_method_id:
        auto_topup_card_save(topup.organization, intent.customer_id, intent.payment_method_id)
    return APPLIED


def _intent_failed(intent: stripe_api.PaymentIntentInfo) -> Outcome:
    topup = _topup_from_metadata(intent.metadata)
    if topup is None or topup.status != TopUp.Status.PENDING:
        return Outcome(StripeEvent.Outcome.IGNORED, "no pending top-up")
    if topup.source == TopUp.Source.AUTO:
        auto_topup_fail(topup, intent.error_message or "The card was declined.")
    return APPLIED


# --- operator actions (admin) ------------------------------------------------------------------


def payment_event_retry(*, event_row_id: int, actor: str) -> StripeEvent:
    """Apply a stored rejected, deferred, ignored or dismissed event again (after a fix, say)."""
    with transaction.atomic():
        row = StripeEvent.objects.select_for_update().get(pk=event_row_id)
        if row.outcome == StripeEvent.Outcome.APPLIED:
            return row
        result = _dispatch(stripe_api.webhook_event_from_dict(row.payload))
        row.outcome, row.processed_at = result.outcome, timezone.now()
        row.note = f"retried by {actor}: {result.note}"[:500]
        row.save(update_fields=["outcome", "note", "processed_at"])
    if row.outcome == StripeEvent.Outcome.APPLIED and row.type in _PAYING_EVENTS:
        payment_events_replay_deferred(row.payment_intent_id)
    return row


def payment_event_dismiss(*, event_row_id: int, actor: str) -> bool:
    return bool(
        StripeEvent.objects.filter(pk=event_row_id)
        .exclude(outcome=StripeEvent.Outcome.APPLIED)
        .update(outcome=StripeEvent.Outcome.DISMISSED, note=f"dismissed by {actor}", processed_at=timezone.now())
    )


def payment_event_credit(*, event_row_id: int, actor: str) -> StripeEvent:
    """A rejected paying event an operator checked in Stripe's dashboard: credit its top-up as a payment.

    The amounts are our top-up's (what the customer was quoted), as for any paid top-up.
    """
    with transaction.atomic():
        row = StripeEvent.objects.select_for_update().get(pk=event_row_id)
        if row.outcome != StripeEvent.Outcome.REJECTED or row.type not in _PAYING_EVENTS:
            raise ValueError("Only a rejected payment event can be credited as a payment.")
        event = stripe_api.webhook_event_from_dict(row.payload)
        topup = None
        if event.session is not None:
            topup = TopUp.objects.select_for_update().filter(stripe_session_id=event.session.id).first()
            topup = topup or _topup_from_metadata(event.session.metadata)
        elif event.payment_intent is not None:
            topup = _topup_from_metadata(event.payment_intent.metadata)
        if topup is None:
            raise ValueError("The event names no top-up of ours.")
        topup_fulfil(topup, payment_intent_id=event.payment_intent_id)
        row.outcome, row.processed_at = StripeEvent.Outcome.APPLIED, timezone.now()
        row.note = f"credited as a payment by {actor}"
        row.save(update_fields=["outcome", "note", "processed_at"])
    payment_events_replay_deferred(event.payment_intent_id)
    return row
