from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("o/<slug:slug>/credits/", views.credits_page, name="billing_credits"),
]
