"""Organizations, members, invitations, API keys and BYOK credentials in the admin console.

Secrets never appear: not an API key's hash, not an invitation's token hash, not a provider key
(encrypted or not). Keys and provider credentials are created where their plaintext is shown or
typed once (the Keys and BYOK pages, the API), so the admin cannot add them; it can disable or
delete them, and those changes go through the services so gateway caches learn of them.

An organization's balance and the grant/revoke page belong to billing: `billing.admin` registers a
subclass of `OrganizationAdmin` that adds them, so this module imports nothing above organizations.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from organizations.audit import audit_record, audit_snapshot
from organizations.models import ApiKey, AuditEvent, Invitation, Membership, Organization, ProviderCredential
from organizations.services import api_key_changed, api_key_delete


class AuditedAdminMixin:
    """Changes saved through the admin are audited like any other (source "admin" from the path)."""

    audit_prefix = ""

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool) -> None:
        fields = [f for f in form.changed_data if f in {field.name for field in obj._meta.concrete_fields}]
        before = audit_snapshot(form.instance.__class__.objects.get(pk=obj.pk), fields) if change else None
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        if fields:
            org = obj if isinstance(obj, Organization) else obj.organization
            action = f"{self.audit_prefix}.{'updated' if change else 'created'}"
            audit_record(organization=org, action=action, target=obj, before=before, after=audit_snapshot(obj, fields))


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    audit_prefix = "organization"
    list_display = ["name", "slug", "is_personal", "member_count", "created_at"]
    list_filter = ["is_personal", "log_prompts", "byok_allow_platform_fallback", "created_at"]
    search_fields = ["name", "slug", "public_id", "memberships__user__email"]
    readonly_fields = ["public_id", "created_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        qs: QuerySet[Organization] = super().get_queryset(request)
        return qs.annotate(member_total=Count("memberships", distinct=True))

    @admin.display(description="Members", ordering="member_total")
    def member_count(self, obj: Organization) -> int:
        return int(getattr(obj, "member_total", 0))


@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    audit_prefix = "member"
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    list_select_related = ["user", "organization"]
    raw_id_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["email", "organization", "role", "invited_by", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role", "created_at", "accepted_at"]
    search_fields = ["email", "organization__name", "organization__slug"]
    list_select_related = ["organization", "invited_by"]
    exclude = ["token_hash"]
    readonly_fields = ["public_id", "organization", "email", "invited_by", "created_at", "accepted_at", "accepted_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # an invitation's token is emailed once by the service; the admin cannot send it


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    audit_prefix = "key"
    list_display = ["name", "organization", "label", "disabled", "is_management", "last_used_at", "created_at"]
    list_filter = ["disabled", "is_management", "limit_reset", "created_at"]
    search_fields = ["name", "label", "organization__name", "organization__slug", "created_by__email"]
    list_select_related = ["organization"]
    exclude = ["hash"]
    readonly_fields = [
        "public_id",
        "organization",
        "label",
        "is_management",
        "created_by",
        "created_at",
        "updated_at",
        "last_used_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the plaintext is shown once where a key is created: the Keys page or the API

    def save_model(self, request: HttpRequest, obj: ApiKey, form: ModelForm[ApiKey], change: bool) -> None:
        super().save_model(request, obj, form, change)
        api_key_changed(obj)

    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        api_key_delete(api_key=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset:
            api_key_delete(api_key=api_key)


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(AuditedAdminMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    audit_prefix = "byok"
    list_display = ["provider_slug", "organization", "hint", "is_enabled", "created_by", "updated_at"]
    list_filter = ["is_enabled", "provider_slug"]
    search_fields = ["provider_slug", "organization__name", "organization__slug"]
    list_select_related = ["organization", "created_by"]
    fields = ["organization", "provider_slug", "hint", "is_enabled", "created_by", "created_at", "updated_at"]
    readonly_fields = ["organization", "provider_slug", "hint", "created_by", "created_at", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # secrets are typed on the organization's BYOK page, never into the admin


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: the log is append-only, and only the retention purge removes rows."""

    list_display = ["created_at", "organization", "action", "target", "actor_label", "source", "ip"]
    list_filter = ["source", "action", "created_at"]
    search_fields = ["organization__slug", "organization__name", "action", "target", "actor_label"]
    list_select_related = ["organization"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
