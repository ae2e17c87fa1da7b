"""The Stripe webhook, driven end to end: signed payloads posted to the real endpoint."""

from __future__ import annotations

import json
import time
from typing import Any

from django.test import Client

from billing.ledger import org_balance_nanos
from billing.models import LedgerAccount, LedgerEntry, StripeEvent, TopUp
from billing.payments.quotes import Quote, card_fee_nanos
from common.money import usd_to_nanos
from tests.billing.payments.support import Deliver, sign, stripe_event
from tests.support import Triad


def _topup(triad: Triad, usd: int = 10, session: str = "cs_test_a1") -> TopUp:
    credit = usd_to_nanos(usd)
    quote = Quote(credit, card_fee_nanos(credit))
    return TopUp.objects.create(
        organization=triad.org,
        created_by=triad.owner,
        credit_nanos=quote.credit_nanos,
        fee_nanos=quote.fee_nanos,
        stripe_session_id=session,
    )


def _completed(topup: TopUp, **overrides: object) -> dict:
    fields = {
        "id": topup.stripe_session_id,
        "amount_total": topup.total_nanos // 10_000_000,
        "metadata": {"org_id": str(topup.organization_id), "topup_id": str(topup.public_id), "save_card": "0"},
        **overrides,
    }
    return stripe_event("checkout.session.completed", **fields)


def _platform(kind: str) -> int:
    acc = LedgerAccount.objects.filter(kind=kind, organization=None).first()
    return acc.balance_nanos if acc else 0


def _held(triad: Triad) -> int:
    acc = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.DISPUTES_HELD, organization=triad.org).first()
    return acc.balance_nanos if acc else 0


def test_it_credits_a_paid_checkout_once_with_the_fee_booked_separately(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad)
    response = deliver(_completed(topup))
    assert response.status_code == 200 and response.json()["outcome"] == "applied"
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.PAID and topup.stripe_payment_intent_id == "pi_test_a1"
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)
    assert _platform(LedgerAccount.Kind.FEE_REVENUE) == usd_to_nanos("0.80")
    assert _platform(LedgerAccount.Kind.PAYMENT_CLEARING) == -usd_to_nanos("10.80")


def test_it_ignores_a_duplicate_delivery_of_the_same_event(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad)
    event = _completed(topup)
    assert deliver(event).status_code == 200
    assert deliver(event).status_code == 200
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)


def test_it_credits_once_when_the_session_completes_under_two_event_ids(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad)
    deliver(_completed(topup), event_id="evt_first")
    deliver(_completed(topup, payment_status="paid"), event_id="evt_async_again")
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP, organization=triad.org).count() == 1
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)


def test_it_refuses_a_tampered_body(triad: Triad, client: Client, stripe_keys: None) -> None:
    topup = _topup(triad)
    body = json.dumps(_completed(topup))
    header = sign(body)
    tampered = body.replace('"amount_total": 1080', '"amount_total": 108000')
    response = client.post(
        "/billing/stripe/webhook/", data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert response.status_code == 400
    assert not StripeEvent.objects.exists() and org_balance_nanos(triad.org) == 0


def test_it_refuses_a_signature_made_with_another_secret(triad: Triad, deliver: Deliver) -> None:
    response = deliver(_completed(_topup(triad)), secret="whsec_attacker")
    assert response.status_code == 400
    assert org_balance_nanos(triad.org) == 0


def test_it_refuses_a_stale_timestamp(triad: Triad, deliver: Deliver) -> None:
    response = deliver(_completed(_topup(triad)), timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert org_balance_nanos(triad.org) == 0


def test_it_refuses_a_timestamp_from_the_future(triad: Triad, deliver: Deliver) -> None:
    response = deliver(_completed(_topup(triad)), timestamp=int(time.time()) + 3600)
    assert response.status_code == 400


def test_it_refuses_a_missing_signature(triad: Triad, client: Client, stripe_keys: None) -> None:
    body = json.dumps(_completed(_topup(triad)))
    response = client.post("/billing/stripe/webhook/", data=body, content_type="application/json")
    assert response.status_code == 400


def test_it_logs_and_ignores_an_unknown_session(triad: Triad, deliver: Deliver) -> None:
    event = stripe_event("checkout.session.completed", id="cs_not_ours", metadata={})
    response = deliver(event)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert not LedgerEntry.objects.exists()


def test_it_rejects_a_session_whose_metadata_names_another_organization(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad, session="cs_lost_answer")
    TopUp.objects.filter(pk=topup.pk).update(stripe_session_id=None)
    event = _completed(
        topup, id="cs_other", metadata={"org_id": str(triad.outsider_org.pk), "topup_id": str(topup.public_id)}
    )
    response = deliver(event)
    assert response.json()["outcome"] == "ignored"
    assert org_balance_nanos(triad.org) == 0 and org_balance_nanos(triad.outsider_org) == 0


def test_it_finds_the_top_up_from_metadata_when_the_session_id_was_never_saved(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad, session="cs_lost_answer")
    TopUp.objects.filter(pk=topup.pk).update(stripe_session_id=None)
    topup.stripe_session_id = "cs_lost_answer"
    deliver(_completed(topup))
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.PAID and topup.stripe_session_id == "cs_lost_answer"
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)


def test_it_rejects_a_session_whose_amount_differs_from_the_top_up(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad)
    response = deliver(_completed(topup, amount_total=500))
    assert response.status_code == 200 and response.json()["outcome"] == "rejected"
    assert org_balance_nanos(triad.org) == 0
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.PENDING


def test_it_reverses_credit_in_proportion_to_a_partial_refund(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad)
    deliver(_completed(topup))
    deliver(stripe_event("charge.refunded", amount_refunded=540), event_id="evt_refund_half")
    # Half of the $10.80 charge: $5.00 of credit and $0.40 of fee go back.
    assert org_balance_nanos(triad.org) == usd_to_nanos(5)
    assert _platform(LedgerAccount.Kind.FEE_REVENUE) == usd_to_nanos("0.40")
    deliver(stripe_event("charge.refunded", amount_refunded=1080, refunded=True), event_id="evt_refund_rest")
    assert org_balance_nanos(triad.org) == 0 and _platform(LedgerAccount.Kind.PAYMENT_CLEARING) == 0
    # An older cumulative total arriving late changes nothing.
    deliver(stripe_event("charge.refunded", amount_refunded=540), event_id="evt_refund_stale")
    assert org_balance_nanos(triad.org) == 0
    topup.refresh_from_db()
    assert topup.refunded_nanos == usd_to_nanos("10.80") and topup.receipt_url.startswith("https://pay.stripe.com/")


def test_it_applies_a_refund_delivered_before_the_payment_once_the_payment_arrives(
    triad: Triad, deliver: Deliver
) -> None:
    topup = _topup(triad)
    early = deliver(stripe_event("charge.refunded", amount_refunded=540), event_id="evt_refund_early")
    assert early.status_code == 200 and early.json()["outcome"] == "deferred"
    assert not LedgerEntry.objects.exists()
    deliver(_completed(topup))
    assert org_balance_nanos(triad.org) == usd_to_nanos(5)
    assert StripeEvent.objects.get(event_id="evt_refund_early").outcome == StripeEvent.Outcome.APPLIED


def test_it_lets_a_refund_drive_the_balance_negative_after_credit_was_spent(triad: Triad, deliver: Deliver) -> None:
    from django.utils import timezone

    from billing.ledger import Leg, ledger_post
    from billing.models import Generation

    topup = _topup(triad)
    deliver(_completed(topup))
    # The spend as settlement records it (a generation and its usage entry), so ledger_verify agrees.
    Generation.objects.create(
        generation_id="gen-test",
        organization=triad.org,
        model="m",
        provider_slug="p",
        provider_name="P",
        cost_nanos=usd_to_nanos(8),
        created_at=timezone.now(),
    )
    ledger_post(
        idempotency_key="usage:test",
        kind=LedgerEntry.Kind.USAGE,
        organization=triad.org,
        legs=[
            Leg(LedgerAccount.Kind.ORG_CREDITS, -usd_to_nanos(8), triad.org),
            Leg(LedgerAccount.Kind.USAGE_REVENUE, usd_to_nanos(8)),
        ],
    )
    deliver(stripe_event("charge.refunded", amount_refunded=1080), event_id="evt_refund_all")
    assert org_balance_nanos(triad.org) == -usd_to_nanos(8)


def test_it_holds_disputed_credit_and_returns_it_when_the_dispute_is_won(triad: Triad, deliver: Deliver) -> None:
    deliver(_completed(_topup(triad)))
    deliver(stripe_event("charge.dispute.created"))
    assert org_balance_nanos(triad.org) == 0 and _held(triad) == usd_to_nanos(10)
    deliver(stripe_event("charge.dispute.closed", status="won"))
    assert org_balance_nanos(triad.org) == usd_to_nanos(10) and _held(triad) == 0
    assert _platform(LedgerAccount.Kind.FEE_REVENUE) == usd_to_nanos("0.80")


def test_it_writes_off_the_held_credit_and_fee_when_the_dispute_is_lost(triad: Triad, deliver: Deliver) -> None:
    topup = _topup(triad)
    deliver(_completed(topup))
    deliver(stripe_event("charge.dispute.created"))
    deliver(stripe_event("charge.dispute.closed", status="lost"))
    assert org_balance_nanos(triad.org) == 0 and _held(triad) == 0
    assert _platform(LedgerAccount.Kind.FEE_REVENUE) == 0
    assert _platform(LedgerAccount.Kind.PAYMENT_CLEARING) == 0
    topup.refresh_from_db()
    assert topup.dispute_status == "lost"


def test_it_holds_before_resolving_when_the_close_arrives_before_the_open(triad: Triad, deliver: Deliver) -> None:
    deliver(_completed(_topup(triad)))
    deliver(stripe_event("charge.dispute.closed", status="won"))
    deliver(stripe_event("charge.dispute.created"))  # late: its hold was already made and released
    assert org_balance_nanos(triad.org) == usd_to_nanos(10) and _held(triad) == 0
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.DISPUTE).count() == 2


def test_it_lets_a_dispute_on_spent_credit_make_the_balance_negative(triad: Triad, deliver: Deliver) -> None:
    from billing.services import credits_revoke

    deliver(_completed(_topup(triad)))
    credits_revoke(organization=triad.org, amount_nanos=usd_to_nanos(6), reason="spent (stand-in for usage)")
    deliver(stripe_event("charge.dispute.created"))
    assert org_balance_nanos(triad.org) == -usd_to_nanos(6)


def test_it_answers_503_when_stripe_is_not_configured(client: Client, settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = client.post("/billing/stripe/webhook/", data="{}", content_type="application/json")
    assert response.status_code == 503


def test_it_ignores_event_types_it_does_not_handle(triad: Triad, deliver: Deliver) -> None:
    event = stripe_event("charge.refunded")
    event["type"] = "customer.created"
    event["data"]["object"] = {"id": "cus_1", "object": "customer"}
    response = deliver(event)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
