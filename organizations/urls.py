from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from organizations import byok_views, views

app_name = "organizations"

# The Keys page, the home page and Settings are routed by openrouter_site.pages (they combine apps).
urlpatterns: list[URLPattern | URLResolver] = [
    path("o/switch/", views.switch, name="switch"),
    path("o/new/", views.organization_create, name="create"),
    path("o/<slug:slug>/organization/", views.organization, name="organization"),
    path("o/<slug:slug>/organization/invite/", views.invite, name="invite"),
    path("o/<slug:slug>/organization/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("o/<slug:slug>/organization/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "o/<slug:slug>/organization/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("o/<slug:slug>/privacy/", views.privacy, name="privacy"),
    path("o/<slug:slug>/byok/", byok_views.byok_page, name="byok"),
    path("o/<slug:slug>/byok/add/", byok_views.byok_add, name="byok_add"),
    path("o/<slug:slug>/byok/fallback/", byok_views.byok_fallback, name="byok_fallback"),
    path("o/<slug:slug>/byok/<int:credential_id>/toggle/", byok_views.byok_toggle, name="byok_toggle"),
    path("o/<slug:slug>/byok/<int:credential_id>/delete/", byok_views.byok_delete, name="byok_delete"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
