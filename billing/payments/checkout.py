"""Card top-ups by hand: a pending TopUp, then Stripe's hosted Checkout for it.

The top-up is credited later, by the webhook (billing/payments/webhooks.py), never here.
"""

from __future__ import annotations

from billing.models import TopUp
from billing.payments import stripe_api
from billing.payments.quotes import PaymentError, Quote, manager_require
from organizations.models import Membership, Organization


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
    manager_require(membership, organization)
    if not stripe_api.is_configured():
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
        session = stripe_api.checkout_session_create(
            credit_nanos=quote.credit_nanos,
            fee_nanos=quote.fee_nanos,
            metadata=metadata,
            success_url=success_url,
            cancel_url=cancel_url,
            save_card=save_card,
            customer_email=membership.user.email,
            idempotency_key=f"topup:{topup.public_id}",
        )
    except stripe_api.StripeCallError as exc:
        TopUp.objects.filter(pk=topup.pk).update(status=TopUp.Status.FAILED, failure_reason=str(exc)[:500])
        if exc.retryable:
            raise PaymentError("Stripe is not answering right now; no payment was started. Try again shortly.") from exc
        raise PaymentError("The card payment could not be started. Please try again.") from exc
    TopUp.objects.filter(pk=topup.pk).update(stripe_session_id=session.id)
    topup.stripe_session_id = session.id
    return topup, session.url
