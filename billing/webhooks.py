"""The Stripe webhook endpoint: verify, hand to the service, answer.

2xx tells Stripe to stop delivering, so it is sent only once the event is stored (applied,
deferred or deliberately ignored). A failure while applying propagates as a 500 and Stripe retries.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.payments import payment_event_apply
from billing.providers import stripe as stripe_edge

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_edge.webhook_event_parse(request.body, request.headers.get("Stripe-Signature", ""))
    except stripe_edge.StripeNotConfigured:
        return JsonResponse({"error": "Card payments are not configured."}, status=503)
    except (stripe_edge.WebhookSignatureError, stripe_edge.WebhookPayloadError) as exc:
        logger.warning("stripe webhook refused: %s", exc)
        return JsonResponse({"error": "Invalid signature or payload."}, status=400)
    row = payment_event_apply(event)
    return JsonResponse({"received": True, "outcome": row.outcome})
