"""Payment fixtures: Stripe settings, signed webhook deliveries, a canned Stripe API, a clean ledger.

The helpers they use live in support.py, which test modules import directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from billing.ledger import ledger_discrepancies
from billing.payments import stripe_api
from tests.billing.payments.support import WEBHOOK_SECRET, Deliver, FakeStripeApi, sign


@pytest.fixture(autouse=True)
def _ledger_stays_clean(db: None) -> Iterator[None]:
    """After every payment test the ledger balances: cached balances match postings, entries sum to zero."""
    yield
    accounts, entries = ledger_discrepancies()
    assert accounts == [] and entries == []


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # The triad's four users would otherwise spend most of each test hashing passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def stripe_keys(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_payments"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_payments"


@pytest.fixture
def deliver(client: Client, stripe_keys: None) -> Deliver:
    def _deliver(event: dict[str, Any], *, event_id: str | None = None, **sign_kw: Any) -> Any:
        if event_id:
            event = {**event, "id": event_id}
        body = json.dumps(event)
        return client.post(
            "/billing/stripe/webhook/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body, **sign_kw),
        )

    return _deliver


@pytest.fixture
def fake_stripe(stripe_keys: None) -> Iterator[FakeStripeApi]:
    api = FakeStripeApi()
    stripe_api.http_client_install(api.client)
    yield api
    stripe_api.http_client_install(None)
