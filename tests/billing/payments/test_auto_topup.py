"""Auto top-up (saved card, off-session charge from the beat task) and the operator refund."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.ledger import org_balance_nanos
from billing.models import AutoTopUpRule, LedgerEntry, TopUp
from billing.payments.auto_topup import auto_topup_rule_save, auto_topup_run
from billing.payments.quotes import PaymentError
from billing.payments.tasks import auto_topup_check
from billing.payments.topups import topup_refund
from billing.services import credits_grant
from common.money import usd_to_nanos
from organizations.models import Membership
from tests.billing.payments.support import Deliver, FakeStripeApi, stripe_event
from tests.support import Triad


def _rule(triad: Triad, *, threshold: int = 5, amount: int = 20, enabled: bool = True) -> AutoTopUpRule:
    return AutoTopUpRule.objects.create(
        organization=triad.org,
        enabled=enabled,
        threshold_nanos=usd_to_nanos(threshold),
        amount_nanos=usd_to_nanos(amount),
        stripe_customer_id="cus_test_a1",
        stripe_payment_method_id="pm_test_a1",
    )


def _owner(triad: Triad) -> Membership:
    return Membership.objects.get(organization=triad.org, user=triad.owner)


def test_it_saves_the_card_from_a_paid_checkout_that_asked_to_keep_it(triad: Triad, deliver: Deliver) -> None:
    topup = TopUp.objects.create(
        organization=triad.org,
        credit_nanos=usd_to_nanos(10),
        fee_nanos=usd_to_nanos("0.80"),
        save_card=True,
        stripe_session_id="cs_test_a1",
    )
    meta = {"org_id": str(triad.org.pk), "topup_id": str(topup.public_id), "save_card": "1"}
    deliver(stripe_event("payment_intent.succeeded", metadata=meta))
    rule = AutoTopUpRule.objects.get(organization=triad.org)
    assert rule.has_card and rule.stripe_payment_method_id == "pm_test_a1" and not rule.enabled
    # The session's own completion event arrives too; the top-up is still credited once.
    deliver(stripe_event("checkout.session.completed", metadata=meta))
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)


def test_it_charges_the_saved_card_when_the_balance_falls_below_the_threshold(
    triad: Triad, fake_stripe: FakeStripeApi
) -> None:
    _rule(triad)
    assert auto_topup_check() == 1
    (call,) = fake_stripe.calls
    topup = TopUp.objects.get()
    assert call.url == "https://api.stripe.com/v1/payment_intents"
    assert call.headers["Idempotency-Key"] == f"autotopup:{topup.public_id}"
    assert call.form["amount"] == ["2110"] and call.form["off_session"] == ["true"]
    assert call.form["customer"] == ["cus_test_a1"] and call.form["payment_method"] == ["pm_test_a1"]
    assert topup.status == TopUp.Status.PAID and topup.source == TopUp.Source.AUTO
    assert org_balance_nanos(triad.org) == usd_to_nanos(20)
    assert auto_topup_check() == 0  # above the threshold now
    assert len(fake_stripe.calls) == 1


def test_it_does_nothing_while_the_balance_is_above_the_threshold(triad: Triad, fake_stripe: FakeStripeApi) -> None:
    _rule(triad)
    credits_grant(organization=triad.org, amount_nanos=usd_to_nanos(6), reason="test")
    assert auto_topup_run(organization_id=triad.org.pk) is None and not fake_stripe.calls


def test_it_pauses_the_rule_with_a_clear_notice_when_the_card_is_declined(
    triad: Triad, client: Client, fake_stripe: FakeStripeApi
) -> None:
    _rule(triad)
    fake_stripe.next_error = (
        402,
        {"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}},
    )
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None and topup.status == TopUp.Status.FAILED
    rule = AutoTopUpRule.objects.get()
    assert not rule.enabled and "Your card was declined." in rule.last_error
    assert org_balance_nanos(triad.org) == 0
    client.force_login(triad.owner)
    page = client.get(f"/o/{triad.org.slug}/credits/payments/")
    assert b"Auto top-up failed: Your card was declined." in page.content
    assert auto_topup_check() == 0 and len(fake_stripe.calls) == 1


def test_it_fails_the_attempt_when_the_bank_asks_for_authentication(triad: Triad, fake_stripe: FakeStripeApi) -> None:
    _rule(triad)
    fake_stripe.intent_status = "requires_action"
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None and topup.status == TopUp.Status.FAILED
    assert "confirmed" in AutoTopUpRule.objects.get().last_error and org_balance_nanos(triad.org) == 0


def test_it_credits_an_auto_top_up_once_when_its_webhook_also_arrives(
    triad: Triad, fake_stripe: FakeStripeApi, deliver: Deliver
) -> None:
    _rule(triad)
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None
    meta = {"org_id": str(triad.org.pk), "topup_id": str(topup.public_id), "source": "auto"}
    deliver(stripe_event("payment_intent.succeeded", id=topup.stripe_payment_intent_id, amount=2110, metadata=meta))
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP).count() == 1


def test_it_turns_auto_top_up_off_when_a_payment_is_disputed(triad: Triad, deliver: Deliver) -> None:
    _rule(triad)
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_x"
    )
    deliver(stripe_event("checkout.session.completed", id="cs_x", metadata={"topup_id": str(topup.public_id)}))
    deliver(stripe_event("charge.dispute.created"))
    assert not AutoTopUpRule.objects.get().enabled


def test_it_lets_owners_save_a_rule_only_once_a_card_is_saved(triad: Triad, stripe_keys: None) -> None:
    with pytest.raises(PaymentError, match="Save a card first"):
        auto_topup_rule_save(
            organization=triad.org, membership=_owner(triad), enabled=True, threshold_usd="5", amount_usd="20"
        )
    _rule(triad, enabled=False)
    rule = auto_topup_rule_save(
        organization=triad.org, membership=_owner(triad), enabled=True, threshold_usd="7.50", amount_usd="50"
    )
    assert rule.enabled and rule.threshold_nanos == usd_to_nanos("7.50") and rule.amount_nanos == usd_to_nanos(50)
    with pytest.raises(PaymentError):
        auto_topup_rule_save(
            organization=triad.org, membership=_owner(triad), enabled=True, threshold_usd="5", amount_usd="1"
        )


def test_it_refuses_a_member_changing_the_rule(triad: Triad, client: Client, stripe_keys: None) -> None:
    _rule(triad, enabled=False)
    client.force_login(triad.member)
    response = client.post(
        f"/o/{triad.org.slug}/credits/auto-topup/", {"enabled": "on", "threshold": "5", "amount": "20"}
    )
    assert response.status_code == 403 and not AutoTopUpRule.objects.get().enabled


def test_it_refunds_through_stripe_and_reverses_the_credit_once(
    triad: Triad, fake_stripe: FakeStripeApi, deliver: Deliver
) -> None:
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_r"
    )
    deliver(stripe_event("checkout.session.completed", id="cs_r", metadata={"topup_id": str(topup.public_id)}))
    topup_refund(topup=topup, amount_nanos=usd_to_nanos("5.40"), actor=triad.owner)
    (call,) = fake_stripe.calls
    assert call.url == "https://api.stripe.com/v1/refunds"
    assert call.form["payment_intent"] == ["pi_test_a1"] and call.form["amount"] == ["540"]
    assert org_balance_nanos(triad.org) == usd_to_nanos(5)
    # Stripe then reports the same refund; nothing more is reversed.
    deliver(stripe_event("charge.refunded", amount_refunded=540))
    assert org_balance_nanos(triad.org) == usd_to_nanos(5)
    with pytest.raises(PaymentError, match="more than is left"):
        topup_refund(topup=topup, amount_nanos=usd_to_nanos(6), actor=triad.owner)


def test_it_refuses_to_refund_an_unpaid_top_up(triad: Triad, fake_stripe: FakeStripeApi) -> None:
    topup = TopUp.objects.create(organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"))
    with pytest.raises(PaymentError):
        topup_refund(topup=topup, amount_nanos=usd_to_nanos(1), actor=None)
    assert not fake_stripe.calls
