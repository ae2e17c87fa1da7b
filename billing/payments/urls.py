from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing.payments import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("billing/stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
    path("o/<slug:slug>/credits/payments/", views.payments_page, name="payments_page"),
    path("o/<slug:slug>/credits/quote/", views.topup_quote_view, name="payments_quote"),
    path("o/<slug:slug>/credits/buy/", views.topup_checkout_view, name="payments_checkout"),
    path("o/<slug:slug>/credits/return/", views.topup_return_view, name="payments_return"),
    path("o/<slug:slug>/credits/auto-topup/", views.auto_topup_view, name="payments_auto_topup"),
    path(
        "o/<slug:slug>/credits/crypto/<int:chain_id>/address/",
        views.deposit_address_view,
        name="payments_deposit_address",
    ),
]
