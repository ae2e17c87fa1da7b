from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from openrouter_site import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("proxy.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("", include("openrouter_site.pages.urls")),
    path("", include("organizations.urls")),
    path("", include("billing.urls")),
    path("", include("proxy.urls")),
    path("", include("analytics.urls")),
]
