"""Refunds in the organization's audit log: an operator's from the admin (with who did it), Stripe's own
from the webhook (source "system"), and never twice for the same cumulative refund."""

from __future__ import annotations

from django.test import Client

from accounts.models import User
from billing.models import TopUp
from common.money import usd_to_nanos
from organizations.models import AuditEvent
from tests.billing.payments.support import Deliver, FakeStripeApi, stripe_event
from tests.support import Triad


def _paid(triad: Triad, deliver: Deliver) -> TopUp:
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_a"
    )
    deliver(
        stripe_event(
            "checkout.session.completed", id="cs_a", metadata={"topup_id": str(topup.public_id)}, amount_total=1080
        )
    )
    return topup


def test_an_operators_refund_is_audited_once_with_the_operator(
    triad: Triad, client: Client, deliver: Deliver, fake_stripe: FakeStripeApi
) -> None:
    topup = _paid(triad, deliver)
    ops = User.objects.create_superuser("ops@example.com", "correct horse battery")
    client.force_login(ops)
    client.post(
        "/admin/billing/topup/", {"action": "refund_amount", "amount_usd": "5.40", "_selected_action": [topup.pk]}
    )
    assert len(fake_stripe.calls) == 1
    # Stripe then reports the same cumulative refund: nothing new happened, nothing new is recorded.
    client.logout()
    deliver(stripe_event("charge.refunded", amount_refunded=540), event_id="evt_refund_echo")

    events = list(AuditEvent.objects.filter(organization=triad.org, action="refund.recorded"))
    assert len(events) == 1
    event = events[0]
    assert (event.source, event.actor, event.target) == ("admin", ops, f"top-up {topup.public_id}")
    assert event.before == {"refunded_nanos": 0, "credit_reversed_nanos": 0}
    assert event.after is not None and event.after["refunded_nanos"] == usd_to_nanos("5.40")


def test_a_refund_made_in_stripe_is_audited_as_the_system(triad: Triad, deliver: Deliver) -> None:
    _paid(triad, deliver)
    deliver(stripe_event("charge.refunded", amount_refunded=1080, refunded=True), event_id="evt_refund_all")
    event = AuditEvent.objects.get(organization=triad.org, action="refund.recorded")
    assert (event.source, event.actor, event.actor_label) == ("system", None, "")
    assert event.after == {"refunded_nanos": usd_to_nanos("10.80"), "credit_reversed_nanos": usd_to_nanos(10)}


def test_payment_settings_changes_are_audited_from_the_dashboard(
    triad: Triad, client: Client, stripe_keys: None
) -> None:
    from billing.models import AutoTopUpRule

    AutoTopUpRule.objects.create(
        organization=triad.org,
        enabled=False,
        threshold_nanos=usd_to_nanos(5),
        amount_nanos=usd_to_nanos(20),
        stripe_customer_id="cus_test_a1",
        stripe_payment_method_id="pm_test_a1",
    )
    client.force_login(triad.admin)
    client.post(f"/o/{triad.org.slug}/credits/auto-topup/", {"enabled": "on", "threshold": "7.50", "amount": "50"})
    event = AuditEvent.objects.get(organization=triad.org, action="settings.auto_topup_changed")
    assert (event.source, event.actor) == ("dashboard", triad.admin)
    assert event.before == {"enabled": False, "threshold_nanos": usd_to_nanos(5), "amount_nanos": usd_to_nanos(20)}
    assert event.after == {"enabled": True, "threshold_nanos": usd_to_nanos("7.50"), "amount_nanos": usd_to_nanos(50)}
