"""Only the payment routes and the admin, at their real paths: these tests do not depend on other apps' URL modules."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls), path("", include("billing.payments_urls"))]
