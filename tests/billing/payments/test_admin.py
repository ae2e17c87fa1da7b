"""Operators see payments with their ledger entries and refund only through the service."""

from __future__ import annotations

from django.test import Client

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import StripeEvent, TopUp
from common.money import usd_to_nanos
from tests.billing.payments.support import Deliver, FakeStripeApi, stripe_event
from tests.support import Triad


def _operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops@example.com", "correct horse battery"))
    return client


def _paid(triad: Triad, deliver: Deliver) -> TopUp:
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_a"
    )
    deliver(stripe_event("checkout.session.completed", id="cs_a", metadata={"topup_id": str(topup.public_id)}))
    return topup


def test_it_shows_a_top_up_with_its_ledger_entry_and_event(triad: Triad, client: Client, deliver: Deliver) -> None:
    topup = _paid(triad, deliver)
    c = _operator(client)
    assert str(topup.public_id) in c.get("/admin/billing/topup/").content.decode()
    detail = c.get(f"/admin/billing/topup/{topup.pk}/change/").content.decode()
    assert f"topup:{topup.public_id}" in detail
    assert c.get("/admin/billing/stripeevent/").status_code == 200
    assert c.get("/admin/billing/cryptodeposit/").status_code == 200
    assert c.get(f"/admin/billing/stripeevent/{StripeEvent.objects.get().pk}/change/").status_code == 200


def test_it_refunds_from_the_admin_through_stripe_and_the_ledger(
    triad: Triad, client: Client, deliver: Deliver, fake_stripe: FakeStripeApi
) -> None:
    topup = _paid(triad, deliver)
    response = _operator(client).post(
        "/admin/billing/topup/", {"action": "refund_in_full", "_selected_action": [topup.pk]}, follow=True
    )
    assert response.status_code == 200
    assert [c.url for c in fake_stripe.calls] == ["https://api.stripe.com/v1/refunds"]
    assert fake_stripe.calls[0].form["amount"] == ["1080"]
    assert org_balance_nanos(triad.org) == 0


def test_it_offers_operators_no_way_to_edit_a_top_up(triad: Triad, client: Client, deliver: Deliver) -> None:
    topup = _paid(triad, deliver)
    c = _operator(client)
    c.post(f"/admin/billing/topup/{topup.pk}/change/", {"credit_nanos": usd_to_nanos(1000)})
    topup.refresh_from_db()
    assert topup.credit_nanos == usd_to_nanos(10)
    assert c.get("/admin/billing/topup/add/").status_code == 403
