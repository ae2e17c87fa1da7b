"""Auto top-up against a Stripe stand-in that, like Stripe, replays a saved 500 for a reused key: paid once."""

from __future__ import annotations

import time

from django.core import mail
from django.test import Client

from billing.ledger import org_balance_nanos
from billing.models import AutoTopUpRule, LedgerEntry, TopUp
from billing.payments.auto_topup import auto_topup_run
from billing.payments.checkout import topup_create_checkout
from billing.payments.quotes import PaymentError, topup_quote
from billing.payments.tasks import auto_topup_check
from common.money import usd_to_nanos
from organizations.models import Membership
from tests.billing.payments.stripe_standin import StripeStandIn
from tests.support import Triad

INTENTS = "/v1/payment_intents"


def _rule(triad: Triad) -> AutoTopUpRule:
    return AutoTopUpRule.objects.create(
        organization=triad.org,
        enabled=True,
        threshold_nanos=usd_to_nanos(5),
        amount_nanos=usd_to_nanos(20),
        stripe_customer_id="cus_standin",
        stripe_payment_method_id="pm_standin",
    )


def _creates(standin: StripeStandIn) -> list[str]:
    return [key for method, path, key in standin.requests if method == "POST" and path == INTENTS]


def test_case_6_a_5xx_is_retried_with_a_new_key_only_after_stripe_shows_no_intent(
    triad: Triad, stripe_standin: StripeStandIn
) -> None:
    _rule(triad)
    stripe_standin.fault(INTENTS, "500")
    first = auto_topup_run(organization_id=triad.org.pk)
    assert first is not None and first.status == TopUp.Status.PENDING
    # The old behaviour reused the key and got the saved 500 forever; now: look up, then a new key.
    paid = auto_topup_run(organization_id=triad.org.pk)
    assert paid is not None and paid.status == TopUp.Status.PAID
    assert _creates(stripe_standin) == [f"autotopup:{first.public_id}", f"autotopup:{first.public_id}:2"]
    assert ("GET", INTENTS, "") in stripe_standin.requests
    for _ in range(3):
        auto_topup_check()
    assert stripe_standin.charged(str(first.public_id)) == 1
    assert TopUp.objects.count() == 1 and org_balance_nanos(triad.org) == usd_to_nanos(20)
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP).count() == 1


def test_a_charge_made_behind_a_500_is_found_and_credited_without_charging_again(
    triad: Triad, stripe_standin: StripeStandIn
) -> None:
    _rule(triad)
    stripe_standin.fault(INTENTS, "500_after_create")
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None and topup.status == TopUp.Status.PENDING
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None and topup.status == TopUp.Status.PAID
    assert topup.stripe_payment_intent_id == "pi_standin_1"
    assert len(_creates(stripe_standin)) == 1 and stripe_standin.charged(str(topup.public_id)) == 1
    assert org_balance_nanos(triad.org) == usd_to_nanos(20)


def test_a_charge_whose_answer_timed_out_is_found_and_credited_once(
    triad: Triad, stripe_standin: StripeStandIn
) -> None:
    _rule(triad)
    stripe_standin.fault(INTENTS, "hang")
    started = time.monotonic()
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert time.monotonic() - started < 2.5  # STRIPE_TIMEOUT_SECONDS=1 and no SDK retries
    assert topup is not None and topup.status == TopUp.Status.PENDING
    time.sleep(stripe_standin.hang_seconds)  # let the stand-in finish answering nobody
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None and topup.status == TopUp.Status.PAID
    assert len(_creates(stripe_standin)) == 1 and stripe_standin.charged(str(topup.public_id)) == 1


def test_it_gives_up_after_bounded_tries_with_a_notice_and_an_email_to_the_owners(
    triad: Triad, stripe_standin: StripeStandIn, client: Client
) -> None:
    _rule(triad)
    stripe_standin.fault(INTENTS, "500", "500", "500", "500")
    for _ in range(5):
        auto_topup_run(organization_id=triad.org.pk)
    topup = TopUp.objects.get()
    assert topup.status == TopUp.Status.FAILED and topup.attempts == 3
    assert len(_creates(stripe_standin)) == 3 and stripe_standin.charged(str(topup.public_id)) == 0
    rule = AutoTopUpRule.objects.get()
    assert not rule.enabled and "after 3 tries" in rule.last_error
    (email,) = mail.outbox
    assert email.to == [triad.owner.email] and "paused" in email.subject
    client.force_login(triad.owner)
    assert b"after 3 tries; no money was taken" in client.get(f"/o/{triad.org.slug}/credits/payments/").content
    assert org_balance_nanos(triad.org) == 0


def test_a_hung_stripe_answers_the_buyer_within_the_timeout(triad: Triad, stripe_standin: StripeStandIn) -> None:
    stripe_standin.fault("/v1/checkout/sessions", "hang")
    owner = Membership.objects.get(organization=triad.org, user=triad.owner)
    started = time.monotonic()
    try:
        topup_create_checkout(
            organization=triad.org,
            membership=owner,
            quote=topup_quote("10"),
            success_url="https://app.test/ok",
            cancel_url="https://app.test/no",
        )
        raise AssertionError("a hung Stripe must not start a checkout")
    except PaymentError as exc:
        assert "Stripe" in str(exc)
    assert time.monotonic() - started < 2.5
    assert TopUp.objects.get().status == TopUp.Status.FAILED


def test_a_second_run_while_one_is_calling_stripe_does_not_call_again(
    triad: Triad, stripe_standin: StripeStandIn
) -> None:
    from django.core.cache import cache

    _rule(triad)
    stripe_standin.fault(INTENTS, "500")
    topup = auto_topup_run(organization_id=triad.org.pk)
    assert topup is not None
    cache.add(f"billing:auto-topup:{topup.pk}", "1", timeout=60)  # another run is mid-call
    try:
        assert auto_topup_run(organization_id=triad.org.pk) == topup
        assert len(stripe_standin.requests) == 1
    finally:
        cache.delete(f"billing:auto-topup:{topup.pk}")
    assert auto_topup_run(organization_id=triad.org.pk).status == TopUp.Status.PAID  # type: ignore[union-attr]
