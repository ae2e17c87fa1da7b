"""The card form and the Checkout Session request we send (through the SDK's pluggable HTTP client)."""

from __future__ import annotations

from typing import Any

from django.test import Client

from billing.models import TopUp
from billing.payments.quotes import PaymentError, topup_quote
from common.money import usd_to_nanos
from tests.billing.payments.support import FakeStripeApi
from tests.support import Triad


def _login(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


def test_it_prices_the_card_fee_at_5_5_percent_with_an_80_cent_minimum() -> None:
    assert topup_quote("10").fee_nanos == usd_to_nanos("0.80")
    assert topup_quote("100").fee_nanos == usd_to_nanos("5.50")
    assert topup_quote("14.55").fee_nanos == usd_to_nanos("0.81")  # 80.025 cents, rounded up to the cent
    assert topup_quote("$10000").total_nanos == usd_to_nanos(10_550)


def test_it_refuses_amounts_out_of_range_or_finer_than_a_cent() -> None:
    for bad in ("4.99", "10000.01", "-5", "abc", "", "10.005"):
        try:
            topup_quote(bad)
        except PaymentError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_it_sends_stripe_the_amount_metadata_and_idempotency_key(
    triad: Triad, client: Client, fake_stripe: FakeStripeApi
) -> None:
    response = _login(client, triad.owner).post(f"/o/{triad.org.slug}/credits/buy/", {"amount": "25"})
    topup = TopUp.objects.get()
    assert response.status_code == 303 and response["Location"] == "https://checkout.stripe.test/0"
    (call,) = fake_stripe.calls
    assert call.method == "post" and call.url == "https://api.stripe.com/v1/checkout/sessions"
    assert call.headers["Idempotency-Key"] == f"topup:{topup.public_id}"
    form = call.form
    assert form["mode"] == ["payment"]
    assert form["line_items[0][price_data][unit_amount]"] == ["2500"]
    assert form["line_items[1][price_data][unit_amount]"] == ["138"]  # 5.5% of $25 = $1.375 -> $1.38
    assert form["line_items[0][price_data][currency]"] == ["usd"]
    assert form["metadata[org_id]"] == [str(triad.org.pk)]
    assert form["metadata[topup_id]"] == [str(topup.public_id)]
    assert form["payment_intent_data[metadata][topup_id]"] == [str(topup.public_id)]
    assert "payment_intent_data[setup_future_usage]" not in form
    assert topup.stripe_session_id == "cs_test_0" and topup.status == TopUp.Status.PENDING
    assert topup.credit_nanos == usd_to_nanos(25) and topup.fee_nanos == usd_to_nanos("1.38")


def test_it_asks_stripe_to_keep_the_card_when_saving_it_for_auto_top_up(
    triad: Triad, client: Client, fake_stripe: FakeStripeApi
) -> None:
    _login(client, triad.admin).post(f"/o/{triad.org.slug}/credits/buy/", {"amount": "10", "save_card": "on"})
    form = fake_stripe.calls[0].form
    assert form["payment_intent_data[setup_future_usage]"] == ["off_session"]
    assert form["customer_creation"] == ["always"]


def test_it_shows_an_error_and_sends_nothing_for_an_amount_out_of_range(
    triad: Triad, client: Client, fake_stripe: FakeStripeApi
) -> None:
    c = _login(client, triad.owner)
    response = c.post(f"/o/{triad.org.slug}/credits/buy/", {"amount": "2"}, follow=True)
    assert b"Buy between $5 and $10,000" in response.content
    assert not fake_stripe.calls and not TopUp.objects.exists()


def test_it_marks_the_top_up_failed_when_stripe_refuses_the_session(
    triad: Triad, client: Client, fake_stripe: FakeStripeApi
) -> None:
    fake_stripe.next_error = (400, {"error": {"type": "invalid_request_error", "message": "bad"}})
    response = _login(client, triad.owner).post(f"/o/{triad.org.slug}/credits/buy/", {"amount": "10"}, follow=True)
    assert b"could not be started" in response.content
    assert TopUp.objects.get().status == TopUp.Status.FAILED


def test_it_lets_a_member_see_but_not_buy(triad: Triad, client: Client, fake_stripe: FakeStripeApi) -> None:
    c = _login(client, triad.member)
    page = c.get(f"/o/{triad.org.slug}/credits/payments/")
    assert page.status_code == 200 and b"Only owners and admins can buy credits" in page.content
    assert c.post(f"/o/{triad.org.slug}/credits/buy/", {"amount": "10"}).status_code == 403
    assert not fake_stripe.calls


def test_it_makes_the_organization_current_on_the_payments_page(triad: Triad, client: Client) -> None:
    c = _login(client, triad.admin)
    session = c.session
    session["current_org"] = triad.outsider_org.slug
    session.save()
    assert c.get(f"/o/{triad.org.slug}/credits/payments/").status_code == 200
    assert c.session["current_org"] == triad.org.slug


def test_it_gives_an_outsider_404_everywhere(triad: Triad, client: Client, fake_stripe: FakeStripeApi) -> None:
    c = _login(client, triad.outsider)
    slug = triad.org.slug
    assert c.get(f"/o/{slug}/credits/payments/").status_code == 404
    assert c.get(f"/o/{slug}/credits/quote/?amount=10").status_code == 404
    assert c.post(f"/o/{slug}/credits/buy/", {"amount": "10"}).status_code == 404
    assert c.post(f"/o/{slug}/credits/auto-topup/", {"amount": "10", "threshold": "5"}).status_code == 404
    assert c.post(f"/o/{slug}/credits/crypto/8453/address/").status_code == 404
    assert c.get(f"/o/{slug}/credits/return/?session_id=cs_test_0").status_code == 404
    assert not fake_stripe.calls


def test_it_quotes_fee_and_total_for_the_live_form(triad: Triad, client: Client) -> None:
    c = _login(client, triad.owner)
    ok = c.get(f"/o/{triad.org.slug}/credits/quote/?amount=100", HTTP_HX_REQUEST="true")
    assert b"$5.50" in ok.content and b"$105.50" in ok.content
    bad = c.get(f"/o/{triad.org.slug}/credits/quote/?amount=20000")
    assert b"Buy between $5 and $10,000" in bad.content


def test_it_says_card_payments_are_not_configured_without_stripe_keys(
    triad: Triad, client: Client, settings: Any
) -> None:
    settings.STRIPE_SECRET_KEY = ""
    c = _login(client, triad.owner)
    assert b"Card payments are not configured" in c.get(f"/o/{triad.org.slug}/credits/payments/").content
    c.post(f"/o/{triad.org.slug}/credits/buy/", {"amount": "10"})
    assert not TopUp.objects.exists()


def test_it_lists_receipts_on_the_page(triad: Triad, client: Client, stripe_keys: None) -> None:
    TopUp.objects.create(
        organization=triad.org,
        credit_nanos=usd_to_nanos(42),
        fee_nanos=usd_to_nanos("2.31"),
        status=TopUp.Status.PAID,
        receipt_url="https://pay.stripe.com/receipts/x",
    )
    TopUp.objects.create(organization=triad.outsider_org, credit_nanos=usd_to_nanos(77), fee_nanos=usd_to_nanos(1))
    content = _login(client, triad.owner).get(f"/o/{triad.org.slug}/credits/payments/").content
    assert b"$42.00" in content and b"$44.31" in content and b"https://pay.stripe.com/receipts/x" in content
    assert b"$77.00" not in content


def test_it_shows_the_paid_top_up_on_the_return_page(triad: Triad, client: Client) -> None:
    TopUp.objects.create(
        organization=triad.org,
        credit_nanos=usd_to_nanos(10),
        fee_nanos=usd_to_nanos("0.80"),
        status=TopUp.Status.PAID,
        stripe_session_id="cs_done",
    )
    content = _login(client, triad.owner).get(f"/o/{triad.org.slug}/credits/return/?session_id=cs_done").content
    assert b"$10.00 of credits were added" in content
