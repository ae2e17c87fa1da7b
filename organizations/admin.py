"""Organizations, members, invitations, API keys and BYOK credentials in the admin console.

Secrets never appear: not an API key's hash, not an invitation's token hash, not a provider key
(encrypted or not). Keys and provider credentials are created where their plaintext is shown or
typed once (the Keys and BYOK pages, the API), so the admin cannot add them; it can disable or
delete them, and those changes go through the services so gateway caches learn of them.

An organization's balance and the grant/revoke page belong to billing: `billing.admin` registers a
subclass of `OrganizationAdmin` that adds them, so this module imports nothing above organizations.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from organizations.models import ApiKey, Invitation, Membership, Organization, ProviderCredential
from organizations.services import api_key_changed, api_key_delete


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["user"]
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
class MembershipAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
class ApiKeyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
class ProviderCredentialAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["provider_slug", "organization", "hint", "is_enabled", "created_by", "updated_at"]
    list_filter = ["is_enabled", "provider_slug"]
    search_fields = ["provider_slug", "organization__name", "organization__slug"]
    list_select_related = ["organization", "created_by"]
    fields = ["organization", "provider_slug", "hint", "is_enabled", "created_by", "created_at", "updated_at"]
    readonly_fields = ["organization", "provider_slug", "hint", "created_by", "created_at", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # secrets are typed on the organization's BYOK page, never into the admin
