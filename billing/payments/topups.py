"""A card top-up's life after checkout: paid, failed, refunded, disputed, each with its ledger entry.

Ledger entries (all through `ledger_post`, keys in brackets):
- paid top-up [topup:<id>]: payment_clearing -(credit+fee), org_credits +credit, fee_revenue +fee
- refund, cumulative R of the charge T [refund:<id>:<R>]: the delta since the last refund, split
  credit*R/T from org_credits and the rest from fee_revenue, back to payment_clearing
- dispute of D opened [dispute:<d>:hold]: c = credit*D/T moves org_credits -> disputes_held
- dispute won [dispute:<d>:won]: c moves back; lost [dispute:<d>:lost]: disputes_held -c,
  fee_revenue -(D-c), payment_clearing +D
Refunds and disputes may drive the balance negative: the gateway then answers 402 until a top-up.

Also here, because payment events cause them: saving the card on the auto top-up rule, and pausing
the rule when a charge fails or is disputed. Both the webhook and auto top-up modules call into this
one, and it calls neither (auto_topup -> webhooks -> topups).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.ledger import Leg, ledger_post
from billing.models import AutoTopUpRule, LedgerAccount, LedgerEntry, StripeEvent, TopUp
from billing.payments import stripe_api
from billing.payments.quotes import CENT_NANOS, PaymentError
from common.money import usd_to_nanos
from organizations.audit import audit_record
from organizations.models import Organization

Kind = LedgerAccount.Kind


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a payment event did, as stored on its StripeEvent row."""

    outcome: str
    note: str = ""


APPLIED = Outcome(StripeEvent.Outcome.APPLIED)


def topup_fulfil(topup: TopUp, *, payment_intent_id: str) -> None:
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


# --- refunds and disputes ----------------------------------------------------------------------


def _split(topup: TopUp, charge_nanos: int) -> tuple[int, int]:
    """The (credit, fee) parts of `charge_nanos` of this top-up's charge, in proportion."""
    credit = topup.credit_nanos * charge_nanos // topup.total_nanos
    return credit, charge_nanos - credit


def topup_refund_record(topup: TopUp, cumulative_nanos: int, charge: stripe_api.ChargeInfo | None = None) -> Outcome:
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
    before = {"refunded_nanos": topup.refunded_nanos, "credit_reversed_nanos": topup.credit_reversed_nanos}
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
    after = {"refunded_nanos": cumulative, "credit_reversed_nanos": credit_target}
    audit_record(
        organization=org, action="refund.recorded", target=f"top-up {topup.public_id}", before=before, after=after
    )
    return APPLIED


def topup_dispute_hold(topup: TopUp, dispute: stripe_api.DisputeInfo) -> Outcome:
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


def topup_dispute_close(topup: TopUp, dispute: stripe_api.DisputeInfo) -> Outcome:
    topup_dispute_hold(topup, dispute)  # a "closed" delivered before its "created" still holds first
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
        stripe_api.refund_create(
            payment_intent_id=locked.stripe_payment_intent_id,
            amount_nanos=amount_nanos,
            metadata={"topup_id": str(locked.public_id), "by": str(actor.pk if actor else "")},
            idempotency_key=f"refund:{locked.public_id}:{cumulative}",
        )
    except stripe_api.StripeCallError as exc:
        raise PaymentError(f"Stripe refused the refund: {exc}") from exc
    with transaction.atomic():
        locked = TopUp.objects.select_for_update().get(pk=topup.pk)
        topup_refund_record(locked, cumulative)
    return locked


# --- effects on the auto top-up rule -----------------------------------------------------------


def auto_topup_card_save(organization: Organization, customer_id: str, payment_method_id: str) -> None:
    """Keep the card a paid checkout asked to save; the rule it lands on starts disabled."""
    rule, _ = AutoTopUpRule.objects.get_or_create(
        organization=organization,
        defaults={"threshold_nanos": usd_to_nanos(5), "amount_nanos": usd_to_nanos(25)},
    )
    rule.stripe_customer_id, rule.stripe_payment_method_id = customer_id, payment_method_id
    rule.save(update_fields=["stripe_customer_id", "stripe_payment_method_id", "updated_at"])


def auto_topup_fail(topup: TopUp, reason: str) -> None:
    """A failed automatic charge pauses the rule, so a declined card is not retried every minute."""
    TopUp.objects.filter(pk=topup.pk).update(status=TopUp.Status.FAILED, failure_reason=reason[:500])
    message = f"Auto top-up failed: {reason} Auto top-up is paused until you turn it on again."
    AutoTopUpRule.objects.filter(organization_id=topup.organization_id).update(
        enabled=False, last_error=message[:500], last_error_at=timezone.now()
    )
