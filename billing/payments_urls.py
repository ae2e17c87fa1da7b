from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing import payments_views
from billing.webhooks import stripe_webhook

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/stripe/webhook/", stripe_webhook, name="stripe_webhook"),
    path("o/<slug:slug>/credits/payments/", payments_views.payments_page, name="payments_page"),
    path("o/<slug:slug>/credits/quote/", payments_views.topup_quote_view, name="payments_quote"),
    path("o/<slug:slug>/credits/buy/", payments_views.topup_checkout_view, name="payments_checkout"),
    path("o/<slug:slug>/credits/return/", payments_views.topup_return_view, name="payments_return"),
    path("o/<slug:slug>/credits/auto-topup/", payments_views.auto_topup_view, name="payments_auto_topup"),
    path(
        "o/<slug:slug>/credits/crypto/<int:chain_id>/address/",
        payments_views.deposit_address_view,
        name="payments_deposit_address",
    ),
]
