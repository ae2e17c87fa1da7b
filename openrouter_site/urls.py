from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from openrouter_site import health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("proxy.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("", include("openrouter_site.pages.urls")),
    path("", include("organizations.urls")),
    path("", include("billing.urls")),
    path("", include("analytics.urls")),
]
