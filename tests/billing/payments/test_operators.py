"""Operators see and fix payments in the admin: refunds of any amount, deposits and Stripe events that
need a decision (credit as a payment, dismiss, retry), auto top-up attempts, the scanner's heartbeat."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import (
    AutoTopUpRule,
    ChainCursor,
    CryptoDeposit,
    DepositAddress,
    LedgerEntry,
    StripeEvent,
    TopUp,
)
from billing.payments.tasks import auto_topup_check
from common.money import usd_to_nanos
from tests.billing.payments.stripe_standin import StripeStandIn
from tests.billing.payments.support import Deliver, FakeStripeApi, stripe_event
from tests.support import Triad

Status = CryptoDeposit.Status


def _operator(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("ops@example.com", "correct horse battery"))
    return client


def _paid(triad: Triad, deliver: Deliver, session: str = "cs_a") -> TopUp:
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id=session
    )
    deliver(
        stripe_event(
            "checkout.session.completed", id=session, metadata={"topup_id": str(topup.public_id)}, amount_total=1080
        )
    )
    return topup


def _deposit(triad: Triad, status: str, usd: str = "0.50", tx: str = "0x" + "ab" * 32) -> CryptoDeposit:
    address = DepositAddress.objects.create(
        organization=triad.org, chain_id=8453, address="0x" + "12" * 20, derivation_index=triad.org.pk
    )
    return CryptoDeposit.objects.create(
        organization=triad.org,
        deposit_address=address,
        chain_id=8453,
        tx_hash=tx,
        log_index=0,
        block_number=10,
        block_hash="0x" + "cd" * 32,
        token_address="0x" + "34" * 20,
        from_address="0x" + "56" * 20,
        amount_nanos=usd_to_nanos(usd),
        status=status,
    )


def test_it_refunds_any_amount_from_the_admin(
    triad: Triad, client: Client, deliver: Deliver, fake_stripe: FakeStripeApi
) -> None:
    topup = _paid(triad, deliver)
    c = _operator(client)
    c.post("/admin/billing/topup/", {"action": "refund_amount", "amount_usd": "3.27", "_selected_action": [topup.pk]})
    assert [call.form["amount"] for call in fake_stripe.calls] == [["327"]]
    topup.refresh_from_db()
    assert topup.refunded_nanos == usd_to_nanos("3.27")
    # credit share of $3.27 of a $10.80 charge: floor(10 * 3.27 / 10.80) = $3.027...
    assert org_balance_nanos(triad.org) == usd_to_nanos(10) - usd_to_nanos(10) * 327 // 1080
    response = c.post(
        "/admin/billing/topup/",
        {"action": "refund_amount", "amount_usd": "abc", "_selected_action": [topup.pk]},
        follow=True,
    )
    assert b"Enter the amount to refund in dollars" in response.content and len(fake_stripe.calls) == 1


def test_a_below_minimum_deposit_is_credited_as_a_payment_not_a_grant(triad: Triad, client: Client) -> None:
    deposit = _deposit(triad, Status.BELOW_MINIMUM)
    c = _operator(client)
    assert b"Below the minimum" in c.get("/admin/billing/cryptodeposit/").content
    c.post("/admin/billing/cryptodeposit/", {"action": "credit_as_payment", "_selected_action": [deposit.pk]})
    deposit.refresh_from_db()
    assert deposit.status == Status.CREDITED and "ops@example.com" in deposit.note
    entry = LedgerEntry.objects.get(idempotency_key=f"crypto:8453:{deposit.tx_hash}:0")
    assert entry.kind == LedgerEntry.Kind.TOPUP
    assert org_balance_nanos(triad.org) == usd_to_nanos("0.475")
    c.post("/admin/billing/cryptodeposit/", {"action": "credit_as_payment", "_selected_action": [deposit.pk]})
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP).count() == 1


def test_an_orphaned_deposit_can_be_dismissed_or_sent_back_for_a_recheck(triad: Triad, client: Client) -> None:
    deposit = _deposit(triad, Status.ORPHANED, usd="20")
    c = _operator(client)
    c.post("/admin/billing/cryptodeposit/", {"action": "dismiss", "_selected_action": [deposit.pk]})
    deposit.refresh_from_db()
    assert deposit.status == Status.DISMISSED
    c.post("/admin/billing/cryptodeposit/", {"action": "recheck", "_selected_action": [deposit.pk]})
    deposit.refresh_from_db()
    assert deposit.status == Status.PENDING and org_balance_nanos(triad.org) == 0


def test_a_rejected_stripe_event_can_be_credited_as_a_payment_once(
    triad: Triad, client: Client, deliver: Deliver
) -> None:
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_r"
    )
    meta = {"topup_id": str(topup.public_id)}
    deliver(stripe_event("checkout.session.completed", id="cs_r", metadata=meta, amount_total=999))
    row = StripeEvent.objects.get()
    assert row.outcome == StripeEvent.Outcome.REJECTED and org_balance_nanos(triad.org) == 0
    c = _operator(client)
    assert b"amount or currency differs" in c.get("/admin/billing/stripeevent/").content
    for _ in range(2):
        c.post("/admin/billing/stripeevent/", {"action": "credit_as_payment", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.outcome == StripeEvent.Outcome.APPLIED and "credited as a payment" in row.note
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP).count() == 1


def test_a_deferred_event_can_be_dismissed_or_retried(triad: Triad, client: Client, deliver: Deliver) -> None:
    pending = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_p"
    )
    deliver(stripe_event("charge.refunded", amount_refunded=540), event_id="evt_early")
    early = StripeEvent.objects.get(event_id="evt_early")
    assert early.outcome == StripeEvent.Outcome.DEFERRED
    c = _operator(client)
    c.post("/admin/billing/stripeevent/", {"action": "dismiss", "_selected_action": [early.pk]})
    early.refresh_from_db()
    assert early.outcome == StripeEvent.Outcome.DISMISSED
    meta = {"topup_id": str(pending.public_id)}
    deliver(stripe_event("checkout.session.completed", id="cs_p", metadata=meta))
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)  # a dismissed event is not replayed
    c.post("/admin/billing/stripeevent/", {"action": "retry", "_selected_action": [early.pk]})
    early.refresh_from_db()
    assert early.outcome == StripeEvent.Outcome.APPLIED and org_balance_nanos(triad.org) == usd_to_nanos(5)


def test_refunds_and_disputes_of_payments_that_are_not_ours_are_ignored(
    triad: Triad, deliver: Deliver, stripe_keys: None
) -> None:
    _paid(triad, deliver)  # our only top-up is paid: nothing of ours is waiting for its payment intent
    response = deliver(stripe_event("charge.refunded", payment_intent="pi_someone_else"), event_id="evt_other")
    assert response.json()["outcome"] == "ignored"
    response = deliver(stripe_event("charge.dispute.created", payment_intent="pi_someone_else"), event_id="evt_dp")
    assert response.json()["outcome"] == "ignored"
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)


def test_deferred_events_whose_payment_never_comes_end_up_ignored(triad: Triad, deliver: Deliver) -> None:
    TopUp.objects.create(organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"))
    deliver(stripe_event("charge.refunded", payment_intent="pi_x"), event_id="evt_old")
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.DEFERRED
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(days=4))
    auto_topup_check()
    assert StripeEvent.objects.get().outcome == StripeEvent.Outcome.IGNORED


def test_operators_see_auto_top_up_attempts_and_retry_one(
    triad: Triad, client: Client, stripe_standin: StripeStandIn
) -> None:
    AutoTopUpRule.objects.create(
        organization=triad.org,
        enabled=True,
        threshold_nanos=usd_to_nanos(5),
        amount_nanos=usd_to_nanos(20),
        stripe_customer_id="cus_standin",
        stripe_payment_method_id="pm_standin",
    )
    stripe_standin.fault("/v1/payment_intents", "500")
    auto_topup_check()
    topup = TopUp.objects.get()
    c = _operator(client)
    listing = c.get("/admin/billing/topup/?source=auto").content.decode()
    assert str(topup.public_id) in listing and "Pending" in listing
    c.post("/admin/billing/topup/", {"action": "retry_auto_topup", "_selected_action": [topup.pk]})
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.PAID and topup.attempts == 2
    assert stripe_standin.charged(str(topup.public_id)) == 1


def test_the_admin_shows_each_chains_heartbeat_and_reachability(client: Client) -> None:
    ChainCursor.objects.create(chain_id=137, next_block=5, last_error="Polygon: RPC unreachable: 500")
    page = _operator(client).get("/admin/billing/chaincursor/").content.decode()
    assert "Polygon: RPC unreachable: 500" in page and "icon-no" in page


def test_outsiders_and_members_cannot_use_the_payment_admin(triad: Triad, client: Client) -> None:
    deposit = _deposit(triad, Status.BELOW_MINIMUM)
    for user in (triad.outsider, triad.member):
        client.force_login(user)
        response = client.post(
            "/admin/billing/cryptodeposit/", {"action": "credit_as_payment", "_selected_action": [deposit.pk]}
        )
        assert response.status_code == 302 and "/login/" in response["Location"]
    deposit.refresh_from_db()
    assert deposit.status == Status.BELOW_MINIMUM and org_balance_nanos(triad.org) == 0
