from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, re_path

from analytics import api, prompt_logs, views

app_name = "analytics"

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^api/v1/activity/?$", api.ActivityView.as_view(), name="api-activity"),
    path("o/<slug:slug>/activity/", views.activity, name="activity"),
    path("o/<slug:slug>/activity/series.json", views.activity_series, name="series"),
    path("o/<slug:slug>/activity/generations/", views.generations, name="generations"),
    path("o/<slug:slug>/activity/generations.csv", views.generations_export, name="export"),
    path("o/<slug:slug>/activity/aggregates.csv", views.aggregates_export, name="export-aggregates"),
    path("o/<slug:slug>/activity/generations/<path:generation_id>/", views.generation_detail, name="generation"),
    path("o/<slug:slug>/prompt-logs.jsonl", prompt_logs.prompt_logs_export_view, name="prompt-logs-export"),
    path("o/<slug:slug>/prompt-logs/delete/", prompt_logs.prompt_logs_delete_view, name="prompt-logs-delete"),
]
