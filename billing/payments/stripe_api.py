"""The Stripe edge: the only module that imports `stripe`.

Everything leaving here is ours: nano-dollar amounts, frozen dataclasses and our own exceptions.
Webhook payloads are verified with the SDK and then read as plain JSON, because since
stripe-python 15 `StripeObject` is no longer a dict and half the usual idioms raise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

import stripe
from django.conf import settings
from stripe._base_address import BaseAddresses

NANOS_PER_CENT = 10_000_000
# The SDK rejects stale signatures only; a header dated far in the future is as suspicious.
WEBHOOK_TOLERANCE_SECONDS = 300


class StripeNotConfigured(Exception):
    pass


class StripeCallError(Exception):
    """Stripe refused the call or could not be reached; `retryable` tells the caller which."""

    def __init__(self, message: str, *, retryable: bool, decline_code: str = "") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.decline_code = decline_code


class WebhookSignatureError(Exception):
    pass


class WebhookPayloadError(Exception):
    pass


def nanos_to_cents(nanos: int) -> int:
    if nanos % NANOS_PER_CENT:
        raise ValueError(f"{nanos} nano-dollars is not a whole number of cents")
    return nanos // NANOS_PER_CENT


def cents_to_nanos(cents: int) -> int:
    return int(cents) * NANOS_PER_CENT


def is_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


# --- the test seam -----------------------------------------------------------------------------

Responder = Callable[[str, str, dict[str, list[str]]], tuple[int, dict[str, Any]]]


@dataclass
class RecordedCall:
    method: str
    url: str
    headers: dict[str, str]
    form: dict[str, list[str]]


class CannedHTTPClient(stripe.HTTPClient):
    """Answers Stripe API calls in-process: tests install one with `http_client_install`.

    `responder(method, url, form)` returns (status, json body); every request is recorded with
    its headers, so a test can assert the idempotency key and the exact form we sent.
    """

    name = "canned"

    def __init__(self, responder: Responder) -> None:
        super().__init__()
        self.responder = responder
        self.calls: list[RecordedCall] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        raw = post_data.decode() if isinstance(post_data, bytes) else (post_data or "")
        form = parse_qs(raw)
        self.calls.append(RecordedCall(method, url, dict(headers or {}), form))
        status, body = self.responder(method, url, form)
        return json.dumps(body), status, {}

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[Any, int, Mapping[str, str]]:
        raise NotImplementedError

    def close(self) -> None:
        return None


_installed_http_client: stripe.HTTPClient | None = None


def http_client_install(client: CannedHTTPClient | None) -> None:
    """Route every Stripe call through `client` (None restores the network transport)."""
    global _installed_http_client
    _installed_http_client = client


def _client() -> stripe.StripeClient:
    key = settings.STRIPE_SECRET_KEY
    if not key:
        raise StripeNotConfigured("Card payments are not configured.")
    base: BaseAddresses = {"api": settings.STRIPE_API_BASE.rstrip("/")}
    if _installed_http_client is not None:
        return stripe.StripeClient(key, http_client=_installed_http_client, max_network_retries=0, base_addresses=base)
    # One bounded try per call (no SDK retries): a user's checkout gets an answer within the timeout,
    # and auto top-up decides itself how to retry (it looks the PaymentIntent up first).
    return stripe.StripeClient(
        key,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        max_network_retries=0,
        base_addresses=base,
    )


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except stripe.CardError as exc:
        raise StripeCallError(
            exc.user_message or str(exc), retryable=False, decline_code=str(getattr(exc, "code", "") or "")
        ) from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeCallError(str(exc), retryable=True) from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None) or 0
        raise StripeCallError(exc.user_message or str(exc), retryable=status >= 500) from exc


# --- outbound calls ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str


def checkout_session_create(
    *,
    credit_nanos: int,
    fee_nanos: int,
    metadata: dict[str, str],
    success_url: str,
    cancel_url: str,
    save_card: bool,
    customer_email: str,
    idempotency_key: str,
) -> CheckoutSession:
    """A hosted card payment for credit + fee, as two line items so the receipt shows the fee."""

    def line(name: str, nanos: int) -> dict[str, Any]:
        return {
            "quantity": 1,
            "price_data": {"currency": "usd", "unit_amount": nanos_to_cents(nanos), "product_data": {"name": name}},
        }

    intent_data: dict[str, Any] = {"metadata": metadata}
    params: dict[str, Any] = {
        "mode": "payment",
        # Cards only: delayed methods (bank debits) would make "paid" arrive days later.
        "payment_method_types": ["card"],
        "line_items": [line("Credits", credit_nanos), line("Card processing fee", fee_nanos)],
        "metadata": metadata,
        "client_reference_id": metadata.get("topup_id", ""),
        "success_url": success_url,
        "cancel_url": cancel_url,
        "payment_intent_data": intent_data,
    }
    if customer_email:
        params["customer_email"] = customer_email
    if save_card:
        intent_data["setup_future_usage"] = "off_session"
        params["customer_creation"] = "always"
    session = _call(
        lambda: _client().v1.checkout.sessions.create(
            params=cast(Any, params), options={"idempotency_key": idempotency_key}
        )
    )
    return CheckoutSession(id=session.id, url=session.url or "")


@dataclass(frozen=True, slots=True)
class OffSessionCharge:
    payment_intent_id: str
    succeeded: bool
    status: str


def payment_intent_create_off_session(
    *, customer_id: str, payment_method_id: str, amount_nanos: int, metadata: dict[str, str], idempotency_key: str
) -> OffSessionCharge:
    """Charge a saved card without the customer present (auto top-up)."""
    params: dict[str, Any] = {
        "amount": nanos_to_cents(amount_nanos),
        "currency": "usd",
        "customer": customer_id,
        "payment_method": payment_method_id,
        "off_session": True,
        "confirm": True,
        "metadata": metadata,
    }
    intent = _call(
        lambda: _client().v1.payment_intents.create(
            params=cast(Any, params), options={"idempotency_key": idempotency_key}
        )
    )
    return OffSessionCharge(payment_intent_id=intent.id, succeeded=intent.status == "succeeded", status=intent.status)


def payment_intent_find(*, customer_id: str, topup_id: str, created_after: int) -> OffSessionCharge | None:
    """The PaymentIntent an auto top-up attempt created, if Stripe has one (found by its metadata).

    Listing by customer is read-after-write consistent, unlike the search API, so an intent whose
    create call answered 500 or timed out is found here if it exists.
    """
    params: dict[str, Any] = {"customer": customer_id, "created": {"gte": created_after}, "limit": 100}
    page = _call(lambda: _client().v1.payment_intents.list(params=cast(Any, params)))
    for intent in page.data:
        metadata = intent.metadata.to_dict() if intent.metadata is not None else {}
        if metadata.get("topup_id") == topup_id:
            return OffSessionCharge(
                payment_intent_id=intent.id, succeeded=intent.status == "succeeded", status=intent.status
            )
    return None


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_id: str
    status: str


def refund_create(
    *, payment_intent_id: str, amount_nanos: int, metadata: dict[str, str], idempotency_key: str
) -> RefundResult:
    params: dict[str, Any] = {
        "payment_intent": payment_intent_id,
        "amount": nanos_to_cents(amount_nanos),
        "metadata": metadata,
    }
    refund = _call(
        lambda: _client().v1.refunds.create(params=cast(Any, params), options={"idempotency_key": idempotency_key})
    )
    return RefundResult(refund_id=refund.id, status=refund.status or "")


# --- inbound webhooks --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    mode: str
    payment_status: str
    amount_total_nanos: int
    currency: str
    payment_intent_id: str
    customer_id: str
    metadata: dict[str, str]


@dataclass(frozen=True, slots=True)
class ChargeInfo:
    id: str
    payment_intent_id: str
    amount_nanos: int
    amount_refunded_nanos: int
    receipt_url: str


@dataclass(frozen=True, slots=True)
class DisputeInfo:
    id: str
    charge_id: str
    payment_intent_id: str
    amount_nanos: int
    status: str


@dataclass(frozen=True, slots=True)
class PaymentIntentInfo:
    id: str
    status: str
    amount_nanos: int
    customer_id: str
    payment_method_id: str
    metadata: dict[str, str]
    error_message: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    created: int
    livemode: bool
    payload: dict[str, Any]
    session: SessionInfo | None = None
    charge: ChargeInfo | None = None
    dispute: DisputeInfo | None = None
    payment_intent: PaymentIntentInfo | None = None

    @property
    def payment_intent_id(self) -> str:
        """The PaymentIntent this event is about: how charges and disputes find their top-up."""
        if self.payment_intent is not None:
            return self.payment_intent.id
        for part in (self.charge, self.dispute, self.session):
            if part is not None and part.payment_intent_id:
                return part.payment_intent_id
        return ""


def _s(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if isinstance(value, dict):  # an expanded object: keep its id
        value = value.get("id")
    return str(value) if value is not None else ""


def _meta(obj: Mapping[str, Any]) -> dict[str, str]:
    raw = obj.get("metadata") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _parse_object(obj: dict[str, Any]) -> dict[str, Any]:
    kind = obj.get("object")
    if kind == "checkout.session":
        return {
            "session": SessionInfo(
                id=_s(obj, "id"),
                mode=_s(obj, "mode"),
                payment_status=_s(obj, "payment_status"),
                amount_total_nanos=cents_to_nanos(obj.get("amount_total") or 0),
                currency=_s(obj, "currency").lower(),
                payment_intent_id=_s(obj, "payment_intent"),
                customer_id=_s(obj, "customer"),
                metadata=_meta(obj),
            )
        }
    if kind == "charge":
        return {
            "charge": ChargeInfo(
                id=_s(obj, "id"),
                payment_intent_id=_s(obj, "payment_intent"),
                amount_nanos=cents_to_nanos(obj.get("amount") or 0),
                amount_refunded_nanos=cents_to_nanos(obj.get("amount_refunded") or 0),
                receipt_url=_s(obj, "receipt_url"),
            )
        }
    if kind == "dispute":
        return {
            "dispute": DisputeInfo(
                id=_s(obj, "id"),
                charge_id=_s(obj, "charge"),
                payment_intent_id=_s(obj, "payment_intent"),
                amount_nanos=cents_to_nanos(obj.get("amount") or 0),
                status=_s(obj, "status"),
            )
        }
    if kind == "payment_intent":
        error = obj.get("last_payment_error") or {}
        return {
            "payment_intent": PaymentIntentInfo(
                id=_s(obj, "id"),
                status=_s(obj, "status"),
                amount_nanos=cents_to_nanos(obj.get("amount") or 0),
                customer_id=_s(obj, "customer"),
                payment_method_id=_s(obj, "payment_method"),
                metadata=_meta(obj),
                error_message=str(error.get("message") or "") if isinstance(error, dict) else "",
            )
        }
    return {}


def webhook_event_parse(payload: bytes, signature_header: str, *, now: float | None = None) -> WebhookEvent:
    """Verify Stripe's signature on the raw body, then read the event as plain JSON."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeNotConfigured("STRIPE_WEBHOOK_SECRET is not set.")
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, WEBHOOK_TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureError(str(exc)) from exc
    timestamps = [int(p[2:]) for p in signature_header.split(",") if p.startswith("t=") and p[2:].isdigit()]
    current = time.time() if now is None else now
    if not timestamps or timestamps[0] > current + WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookSignatureError("Timestamp is in the future.")
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise WebhookPayloadError(f"Not JSON: {exc}") from exc
    return webhook_event_from_dict(data)


def webhook_event_from_dict(data: Any) -> WebhookEvent:
    """Read an already verified event (a stored payload being replayed goes through here too)."""
    try:
        event_id, event_type = str(data["id"]), str(data["type"])
        obj = data["data"]["object"]
        if not isinstance(obj, dict):
            raise TypeError("data.object is not an object")
    except (KeyError, TypeError) as exc:
        raise WebhookPayloadError(f"Not a Stripe event: {exc}") from exc
    return WebhookEvent(
        id=event_id,
        type=event_type,
        created=int(data.get("created") or 0),
        livemode=bool(data.get("livemode")),
        payload=data,
        **_parse_object(obj),
    )
