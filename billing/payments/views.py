"""Buying credits from the web: the card form (with its live fee quote), auto top-up, crypto addresses,
and the Stripe webhook endpoint.

Owners and admins buy; members see the section read-only (a POST from them is 403); outsiders get 404.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from billing.models import TopUp
from billing.payments import stripe_api
from billing.payments.auto_topup import auto_topup_rule_save
from billing.payments.checkout import topup_create_checkout
from billing.payments.crypto import CryptoError, deposit_address_get_or_create
from billing.payments.quotes import PaymentError, topup_quote
from billing.payments.webhooks import payment_event_apply
from organizations.access import OrgRequest, org_page

logger = logging.getLogger(__name__)

BUYERS_ONLY = "Only owners and admins can buy credits."


def _back(slug: str) -> HttpResponseRedirect:
    """To the Credits page that includes this section, or this app's own page where that is not routed."""
    try:
        return HttpResponseRedirect(reverse("billing_credits", args=[slug]))
    except NoReverseMatch:
        return HttpResponseRedirect(reverse("payments_page", args=[slug]))


@org_page()
@require_GET
def payments_page(request: OrgRequest) -> HttpResponse:
    context = {"organization": request.organization, "membership": request.membership}
    return render(request, "billing/payments/page.html", context)


@org_page()
@require_GET
def topup_quote_view(request: OrgRequest) -> HttpResponse:
    try:
        quote, error = topup_quote(request.GET.get("amount", "")), ""
    except PaymentError as exc:
        quote, error = None, str(exc)
    return render(request, "billing/payments/_quote.html", {"quote": quote, "error": error})


@org_page(manage=True, denied=BUYERS_ONLY)
@require_POST
def topup_checkout_view(request: OrgRequest) -> HttpResponse:
    slug = request.organization.slug
    return_url = request.build_absolute_uri(reverse("payments_return", args=[slug]))
    try:
        _, url = topup_create_checkout(
            organization=request.organization,
            membership=request.membership,
            quote=topup_quote(request.POST.get("amount", "")),
            success_url=return_url + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=request.build_absolute_uri(reverse("payments_page", args=[slug])),
            save_card=request.POST.get("save_card") == "on",
        )
    except PaymentError as exc:
        messages.error(request, str(exc))
        return _back(slug)
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url, status=303)


@org_page()
@require_GET
def topup_return_view(request: OrgRequest) -> HttpResponse:
    organization = request.organization
    topup = TopUp.objects.filter(organization=organization, stripe_session_id=request.GET.get("session_id", "")).first()
    context = {
        "organization": organization,
        "membership": request.membership,
        "topup": topup,
        "back_url": _back(organization.slug)["Location"],
    }
    return render(request, "billing/payments/return.html", context)


@org_page(manage=True, denied=BUYERS_ONLY)
@require_POST
def auto_topup_view(request: OrgRequest) -> HttpResponse:
    try:
        auto_topup_rule_save(
            organization=request.organization,
            membership=request.membership,
            enabled=request.POST.get("enabled") == "on",
            threshold_usd=request.POST.get("threshold", ""),
            amount_usd=request.POST.get("amount", ""),
        )
        messages.success(request, "Auto top-up saved.")
    except PaymentError as exc:
        messages.error(request, str(exc))
    return _back(request.organization.slug)


@org_page(manage=True, denied=BUYERS_ONLY)
@require_POST
def deposit_address_view(request: OrgRequest, chain_id: int) -> HttpResponse:
    try:
        deposit_address_get_or_create(organization=request.organization, chain_id=chain_id)
    except CryptoError as exc:
        messages.error(request, str(exc))
    return _back(request.organization.slug)


# 2xx tells Stripe to stop delivering, so it is sent only once the event is stored (applied,
# deferred or deliberately ignored). A failure while applying propagates as a 500 and Stripe retries.
@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = stripe_api.webhook_event_parse(request.body, request.headers.get("Stripe-Signature", ""))
    except stripe_api.StripeNotConfigured:
        return JsonResponse({"error": "Card payments are not configured."}, status=503)
    except (stripe_api.WebhookSignatureError, stripe_api.WebhookPayloadError) as exc:
        logger.warning("stripe webhook refused: %s", exc)
        return JsonResponse({"error": "Invalid signature or payload."}, status=400)
    row = payment_event_apply(event)
    return JsonResponse({"received": True, "outcome": row.outcome})
