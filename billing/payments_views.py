"""Buying credits from the web: the card form (with its live fee quote), auto top-up and crypto addresses.

Owners and admins buy; members see the section read-only (a POST from them is 403); outsiders get 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from billing.crypto_scan import CryptoError, deposit_address_get_or_create
from billing.models import TopUp
from billing.payments import PaymentError, auto_topup_rule_save, topup_create_checkout, topup_quote
from organizations.models import Membership, Organization
from organizations.selectors import organization_get_for_user


def _org(request: HttpRequest, slug: str, *, manage: bool = False) -> tuple[Organization, Membership]:
    organization, membership = organization_get_for_user(user=request.user, slug=slug)  # type: ignore[arg-type]
    if manage and not membership.can_manage:
        raise PermissionDenied("Only owners and admins can buy credits.")
    return organization, membership


def _back(slug: str) -> HttpResponseRedirect:
    """To the Credits page that includes this section, or this app's own page where that is not routed."""
    try:
        return HttpResponseRedirect(reverse("billing_credits", args=[slug]))
    except NoReverseMatch:
        return HttpResponseRedirect(reverse("payments_page", args=[slug]))


@login_required
@require_GET
def payments_page(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = _org(request, slug)
    return render(request, "billing/payments/page.html", {"organization": organization, "membership": membership})


@login_required
@require_GET
def topup_quote_view(request: HttpRequest, slug: str) -> HttpResponse:
    _org(request, slug)
    try:
        quote, error = topup_quote(request.GET.get("amount", "")), ""
    except PaymentError as exc:
        quote, error = None, str(exc)
    return render(request, "billing/payments/_quote.html", {"quote": quote, "error": error})


@login_required
@require_POST
def topup_checkout_view(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = _org(request, slug, manage=True)
    return_url = request.build_absolute_uri(reverse("payments_return", args=[slug]))
    try:
        _, url = topup_create_checkout(
            organization=organization,
            membership=membership,
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


@login_required
@require_GET
def topup_return_view(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = _org(request, slug)
    topup = TopUp.objects.filter(organization=organization, stripe_session_id=request.GET.get("session_id", "")).first()
    back_url = _back(slug)["Location"]
    context = {"organization": organization, "membership": membership, "topup": topup, "back_url": back_url}
    return render(request, "billing/payments/return.html", context)


@login_required
@require_POST
def auto_topup_view(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = _org(request, slug, manage=True)
    try:
        auto_topup_rule_save(
            organization=organization,
            membership=membership,
            enabled=request.POST.get("enabled") == "on",
            threshold_usd=request.POST.get("threshold", ""),
            amount_usd=request.POST.get("amount", ""),
        )
        messages.success(request, "Auto top-up saved.")
    except PaymentError as exc:
        messages.error(request, str(exc))
    return _back(slug)


@login_required
@require_POST
def deposit_address_view(request: HttpRequest, slug: str, chain_id: int) -> HttpResponse:
    organization, _ = _org(request, slug, manage=True)
    try:
        deposit_address_get_or_create(organization=organization, chain_id=chain_id)
    except CryptoError as exc:
        messages.error(request, str(exc))
    return _back(slug)
