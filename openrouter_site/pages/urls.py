from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from openrouter_site.pages import account, byok, catalog, keys, landing, rankings

app_name = "pages"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", landing.home, name="home"),
    path("keys/", keys.home, name="keys_home"),
    path("settings/", account.settings_page, name="settings"),
    path("models/", catalog.models_page, name="models"),
    path("models", catalog.models_page),  # the old address, still linked from outside; same page
    path("models/<path:model_id>/", catalog.model_page, name="model"),
    path("rankings/", rankings.rankings_page, name="rankings"),
    path("o/<slug:slug>/byok/<int:credential_id>/test/", byok.byok_test, name="byok_test"),
    path("o/<slug:slug>/keys/", keys.keys, name="keys"),
    path("o/<slug:slug>/keys/<uuid:key_id>/", keys.key_row, name="key_row"),
    path("o/<slug:slug>/keys/<uuid:key_id>/rename/", keys.key_rename, name="key_rename"),
    path("o/<slug:slug>/keys/<uuid:key_id>/limit/", keys.key_limit, name="key_limit"),
    path("o/<slug:slug>/keys/<uuid:key_id>/toggle/", keys.key_toggle, name="key_toggle"),
    path("o/<slug:slug>/keys/<uuid:key_id>/delete/", keys.key_delete, name="key_delete"),
]
