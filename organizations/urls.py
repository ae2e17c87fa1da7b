from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from organizations import audit_views, byok_views, policy_views, views

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
    path("o/<slug:slug>/policy/", policy_views.policy_page, name="policy"),
    path("o/<slug:slug>/policy/update/", policy_views.policy_update, name="policy_update"),
    path("o/<slug:slug>/policy/keys/<uuid:key_id>/", policy_views.key_models, name="policy_key_models"),
    path("o/<slug:slug>/audit/", audit_views.audit_log, name="audit"),
    path("o/<slug:slug>/audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("o/<slug:slug>/byok/", byok_views.byok_page, name="byok"),
    path("o/<slug:slug>/byok/add/", byok_views.byok_add, name="byok_add"),
    path("o/<slug:slug>/byok/fallback/", byok_views.byok_fallback, name="byok_fallback"),
    path("o/<slug:slug>/byok/<int:credential_id>/toggle/", byok_views.byok_toggle, name="byok_toggle"),
    path("o/<slug:slug>/byok/<int:credential_id>/delete/", byok_views.byok_delete, name="byok_delete"),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
