"""Concurrent deliveries on real PostgreSQL: the row locks and unique keys, not luck, keep credit single."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from django.db import connection

from billing.ledger import org_balance_nanos
from billing.models import LedgerEntry, StripeEvent, TopUp
from billing.payments import stripe_api
from billing.payments.webhooks import payment_event_apply
from common.money import usd_to_nanos
from tests.billing.payments.support import stripe_event
from tests.support import Triad


def _together(*jobs: Callable[[], object]) -> list[BaseException]:
    barrier, errors = threading.Barrier(len(jobs)), []

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # collected and asserted on by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


@pytest.mark.django_db(transaction=True)
def test_it_credits_once_when_the_same_payment_is_reported_by_several_events_at_once(triad: Triad) -> None:
    topup = TopUp.objects.create(
        organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=usd_to_nanos("0.80"), stripe_session_id="cs_c"
    )
    meta = {"org_id": str(triad.org.pk), "topup_id": str(topup.public_id)}
    payloads = [
        {**stripe_event("checkout.session.completed", id="cs_c", metadata=meta), "id": "evt_c1"},
        {**stripe_event("checkout.session.completed", id="cs_c", metadata=meta), "id": "evt_c1"},
        {**stripe_event("checkout.session.completed", id="cs_c", metadata=meta), "id": "evt_c2"},
        {**stripe_event("payment_intent.succeeded", metadata=meta), "id": "evt_pi"},
    ]
    events = [stripe_api.webhook_event_from_dict(json.loads(json.dumps(p))) for p in payloads]
    errors = _together(*[lambda e=e: payment_event_apply(e) for e in events])
    assert errors == []
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP).count() == 1
    assert org_balance_nanos(triad.org) == usd_to_nanos(10)
    assert StripeEvent.objects.count() == 3
