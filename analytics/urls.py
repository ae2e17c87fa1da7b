from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from analytics import views

app_name = "analytics"

urlpatterns: list[URLPattern | URLResolver] = [
    path("o/<slug:slug>/activity/", views.activity, name="activity"),
]
