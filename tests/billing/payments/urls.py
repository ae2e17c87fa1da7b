"""Only the payment routes, at their real paths: these tests do not depend on other apps' URL modules."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("", include("billing.payments_urls"))]
