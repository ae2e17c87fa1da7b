"""Payment test helpers: recorded Stripe events, Stripe's signature scheme, a canned Stripe API."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from billing.payments import stripe_api

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WEBHOOK_SECRET = "whsec_test_payments_123"


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


class FakeStripeApi:
    """Answers like Stripe's API would for the calls we make; records the requests."""

    def __init__(self) -> None:
        self.next_error: tuple[int, dict[str, Any]] | None = None
        self.intent_status = "succeeded"
        self.client = stripe_api.CannedHTTPClient(self._respond)

    @property
    def calls(self) -> list[stripe_api.RecordedCall]:
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
