from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from billing.api import schema, views

# Imported for its side effect: registers the bearer-key security scheme with drf-spectacular.
_ = schema

urlpatterns = [
    re_path(r"^keys/?$", views.KeysView.as_view(), name="api-keys"),
    re_path(r"^keys/(?P<key_hash>[^/]{1,128})/?$", views.KeyDetailView.as_view(), name="api-key-detail"),
    path("key", views.CurrentKeyView.as_view(), name="api-current-key"),
    path("auth/key", views.CurrentKeyView.as_view(), name="api-auth-key"),
    re_path(r"^credits/?$", views.CreditsView.as_view(), name="api-credits"),
    re_path(r"^generation/?$", views.GenerationView.as_view(), name="api-generation"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="api-openapi"),
]
