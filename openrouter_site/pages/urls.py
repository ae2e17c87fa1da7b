from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from openrouter_site.pages import account, keys

app_name = "pages"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", keys.home, name="home"),
    path("keys/", keys.home, name="keys_home"),
    path("settings/", account.settings_page, name="settings"),
    path("o/<slug:slug>/keys/", keys.keys, name="keys"),
    path("o/<slug:slug>/keys/<uuid:key_id>/", keys.key_row, name="key_row"),
    path("o/<slug:slug>/keys/<uuid:key_id>/rename/", keys.key_rename, name="key_rename"),
    path("o/<slug:slug>/keys/<uuid:key_id>/limit/", keys.key_limit, name="key_limit"),
    path("o/<slug:slug>/keys/<uuid:key_id>/toggle/", keys.key_toggle, name="key_toggle"),
    path("o/<slug:slug>/keys/<uuid:key_id>/delete/", keys.key_delete, name="key_delete"),
]
