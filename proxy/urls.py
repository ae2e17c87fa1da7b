from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from proxy.api import catalog_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("models", catalog_views.models_page, name="models"),
]
