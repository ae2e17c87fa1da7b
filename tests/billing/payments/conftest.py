"""Payment test helpers: Stripe settings, signed webhook deliveries, a canned Stripe API, a clean ledger."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from billing.ledger import ledger_discrepancies
from billing.providers import stripe as stripe_edge

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WEBHOOK_SECRET = "whsec_test_payments_123"


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


def stripe_event(name: str, **object_fields: Any) -> dict[str, Any]:
    """A recorded event payload with some fields of its data.object replaced."""
    event = copy.deepcopy(json.loads((FIXTURES / "stripe" / f"{name}.json").read_text()))
    event["data"]["object"].update(object_fields)
    return event


def sign(body: str, *, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe's documented scheme: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<raw body>"))."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


Deliver = Callable[..., Any]


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


class FakeStripeApi:
    """Answers like Stripe's API would for the calls we make; records the requests."""

    def __init__(self) -> None:
        self.next_error: tuple[int, dict[str, Any]] | None = None
        self.intent_status = "succeeded"
        self.client = stripe_edge.CannedHTTPClient(self._respond)

    @property
    def calls(self) -> list[stripe_edge.RecordedCall]:
        return self.client.calls

    def _respond(self, method: str, url: str, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if self.next_error is not None:
            error, self.next_error = self.next_error, None
            return error
        n = len(self.calls) - 1  # this request is already recorded
        if url.endswith("/v1/checkout/sessions"):
            return 200, {"id": f"cs_test_{n}", "object": "checkout.session", "url": f"https://checkout.stripe.test/{n}"}
        if url.endswith("/v1/payment_intents"):
            return 200, {"id": f"pi_auto_{n}", "object": "payment_intent", "status": self.intent_status}
        if url.endswith("/v1/refunds"):
            return 200, {"id": f"re_test_{n}", "object": "refund", "status": "succeeded"}
        return 404, {"error": {"type": "invalid_request_error", "message": f"no route {url}"}}


@pytest.fixture
def fake_stripe(stripe_keys: None) -> Iterator[FakeStripeApi]:
    api = FakeStripeApi()
    stripe_edge.http_client_install(api.client)
    yield api
    stripe_edge.http_client_install(None)
