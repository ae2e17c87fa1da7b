from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("", include("billing.credits_urls")),
    path("", include("billing.payments.urls")),
]
