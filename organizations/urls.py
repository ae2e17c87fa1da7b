from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from organizations import views

app_name = "organizations"

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("keys/", views.home, name="keys_home"),
    path("o/switch/", views.switch, name="switch"),
    path("o/new/", views.organization_create, name="create"),
    path("o/<slug:slug>/keys/", views.keys, name="keys"),
    path("o/<slug:slug>/keys/<uuid:key_id>/", views.key_row, name="key_row"),
    path("o/<slug:slug>/keys/<uuid:key_id>/rename/", views.key_rename, name="key_rename"),
    path("o/<slug:slug>/keys/<uuid:key_id>/limit/", views.key_limit, name="key_limit"),
    path("o/<slug:slug>/keys/<uuid:key_id>/toggle/", views.key_toggle, name="key_toggle"),
    path("o/<slug:slug>/keys/<uuid:key_id>/delete/", views.key_delete, name="key_delete"),
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
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
