from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from billing import views
from organizations import byok_views

# The BYOK page is an organization page, routed here so organizations/urls.py stays with its owner.
urlpatterns: list[URLPattern | URLResolver] = [
    path("o/<slug:slug>/credits/", views.credits_page, name="billing_credits"),
    path("o/<slug:slug>/byok/", byok_views.byok_page, name="byok"),
    path("o/<slug:slug>/byok/add/", byok_views.byok_add, name="byok_add"),
    path("o/<slug:slug>/byok/fallback/", byok_views.byok_fallback, name="byok_fallback"),
    path("o/<slug:slug>/byok/<int:credential_id>/toggle/", byok_views.byok_toggle, name="byok_toggle"),
    path("o/<slug:slug>/byok/<int:credential_id>/delete/", byok_views.byok_delete, name="byok_delete"),
]
