"""The catalog in the admin console. Every committed edit bumps the catalog version, so gateways and
the /models cache pick it up. Provider API keys live in the environment, never here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from common.money import price_per_token_str
from proxy.catalog.services import catalog_changed
from proxy.credentials import provider_env, provider_env_prefix
from proxy.health import endpoint_stats
from proxy.models import Endpoint, Model, Provider


class CatalogAdmin(admin.ModelAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool) -> None:
        super().save_model(request, obj, form, change)
        transaction.on_commit(catalog_changed)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        super().delete_model(request, obj)
        transaction.on_commit(catalog_changed)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        super().delete_queryset(request, queryset)
        transaction.on_commit(catalog_changed)


@admin.action(description="Enable selected")
def enable(modeladmin: CatalogAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    queryset.update(is_enabled=True)
    transaction.on_commit(catalog_changed)


@admin.action(description="Disable selected")
def disable(modeladmin: CatalogAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    queryset.update(is_enabled=False)
    transaction.on_commit(catalog_changed)


@admin.register(Provider)
class ProviderAdmin(CatalogAdmin):
    list_display = (
        "name",
        "slug",
        "adapter",
        "base_url",
        "credentials",
        "retains_prompts",
        "trains_on_prompts",
        "zdr",
        "is_enabled",
    )
    list_filter = (
        "is_enabled",
        "adapter",
        "requires_api_key",
        "retains_prompts",
        "trains_on_prompts",
        "zdr",
        "headquarters",
    )
    search_fields = ("slug", "name", "base_url")
    actions = (enable, disable)

    @admin.display(description="Platform key")
    def credentials(self, obj: Provider) -> str:
        """Whether <SLUG>_API_KEY is set: the key itself is never displayed."""
        key, base = provider_env(obj.slug)
        prefix = provider_env_prefix(obj.slug)
        state = "set" if key else f"missing ({prefix}_API_KEY)"
        return state + (" + base URL override" if base else "")


class EndpointInline(admin.TabularInline):
    model = Endpoint
    extra = 0
    fields = ("tag", "provider", "upstream_model", "prompt_nanos_per_mtok", "completion_nanos_per_mtok", "is_enabled")
    show_change_link = True


@admin.register(Model)
class ModelAdmin(CatalogAdmin):
    list_display = (
        "slug",
        "name",
        "context_length",
        "modality",
        "tokenizer",
        "endpoint_count",
        "is_enabled",
        "retired",
    )
    list_filter = ("is_enabled", "retired", "tokenizer", "is_moderated")
    search_fields = ("slug", "name", "canonical_slug", "hugging_face_id")
    readonly_fields = ("retired",)
    inlines = (EndpointInline,)
    actions = (enable, disable)

    @admin.display(description="Endpoints")
    def endpoint_count(self, obj: Model) -> int:
        return obj.endpoints.count()


@admin.register(Endpoint)
class EndpointAdmin(CatalogAdmin):
    list_display = (
        "__str__",
        "provider",
        "upstream_model",
        "variant",
        "quantization",
        "prompt_price",
        "completion_price",
        "context_length",
        "uptime_30m",
        "is_enabled",
        "retired",
    )
    list_filter = ("is_enabled", "retired", "variant", "quantization", "provider")
    search_fields = ("model__slug", "tag", "upstream_model", "provider__slug", "provider__name")
    list_select_related = ("model", "provider")
    autocomplete_fields = ("model", "provider")
    readonly_fields = ("retired", "health")
    actions = (enable, disable)

    def _health(self, obj: Endpoint) -> dict[str, Any]:
        # One store read per row; the health data lives in Redis, shared by every gateway process.
        return endpoint_stats([obj.pk]).get(obj.pk) or {}

    @admin.display(description="Uptime 30m")
    def uptime_30m(self, obj: Endpoint) -> str:
        value = self._health(obj).get("uptime_last_30m")
        return "-" if value is None else f"{value}%"

    @admin.display(description="Live health (all gateway processes)")
    def health(self, obj: Endpoint) -> str:
        stats = self._health(obj)
        if not stats:
            return "no traffic recorded"
        parts = [f"{k.replace('_', ' ')}: {v}" for k, v in stats.items() if v is not None]
        return "; ".join(parts) or "no traffic recorded"

    @admin.display(description="Prompt $/token", ordering="prompt_nanos_per_mtok")
    def prompt_price(self, obj: Endpoint) -> str:
        return price_per_token_str(obj.prompt_nanos_per_mtok)

    @admin.display(description="Completion $/token", ordering="completion_nanos_per_mtok")
    def completion_price(self, obj: Endpoint) -> str:
        return price_per_token_str(obj.completion_nanos_per_mtok)
