"""The catalog in the admin console. Every committed edit bumps the catalog version, so gateways and
the /models cache pick it up. Provider API keys live in the environment, never here.

Operators edit prices in USD per million tokens (per request / per image: USD); the forms convert to
the stored integer nano-dollars exactly (common.money), refusing sub-nano precision. A catalog fact
an operator changes (a price, a limit, a name) is marked on the row as overridden, so the catalog
load at every start keeps it; "Revert to catalog" clears the marks and puts the file's values back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from common.money import nanos_to_usd, usd_to_nanos
from proxy.catalog.services import ENDPOINT_FACTS, MODEL_FACTS, CatalogError, catalog_changed, catalog_revert
from proxy.credentials import provider_env, provider_env_prefix
from proxy.health import endpoint_stats
from proxy.models import Endpoint, Model, Provider

# Stored nano-dollar field -> what the operator types (USD), and whether it may be left empty.
PRICE_FIELDS: dict[str, tuple[str, bool]] = {
    "prompt_nanos_per_mtok": ("Prompt (USD per million tokens)", False),
    "completion_nanos_per_mtok": ("Completion (USD per million tokens)", False),
    "cache_read_nanos_per_mtok": ("Cache read (USD per million tokens)", True),
    "cache_write_nanos_per_mtok": ("Cache write (USD per million tokens)", True),
    "reasoning_nanos_per_mtok": ("Reasoning (USD per million tokens)", True),
    "request_nanos": ("Per request (USD)", False),
    "image_nanos": ("Per image (USD)", False),
}


def usd_field_name(nanos_field: str) -> str:
    return nanos_field.replace("_nanos", "_usd")


def _usd_field(nanos_field: str) -> forms.DecimalField:
    label, optional = PRICE_FIELDS[nanos_field]
    return forms.DecimalField(label=label, required=not optional, min_value=Decimal(0), max_digits=30, decimal_places=9)


class EndpointForm(ModelForm):
    """An endpoint with its prices in USD; the integer nano-dollar columns are never typed by hand."""

    prompt_usd_per_mtok = _usd_field("prompt_nanos_per_mtok")
    completion_usd_per_mtok = _usd_field("completion_nanos_per_mtok")
    cache_read_usd_per_mtok = _usd_field("cache_read_nanos_per_mtok")
    cache_write_usd_per_mtok = _usd_field("cache_write_nanos_per_mtok")
    reasoning_usd_per_mtok = _usd_field("reasoning_nanos_per_mtok")
    request_usd = _usd_field("request_nanos")
    image_usd = _usd_field("image_nanos")

    class Meta:
        model = Endpoint
        fields = [
            "model",
            "provider",
            "tag",
            "upstream_model",
            "variant",
            "quantization",
            "context_length",
            "max_completion_tokens",
            "max_prompt_tokens",
            "supported_parameters",
            "supports_implicit_caching",
            # Until this gateway measures the endpoint, routing uses these (docs/routing.md "Seeded statistics").
            "published_uptime",
            "published_latency_ms",
            "published_throughput_tps",
            "is_enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in PRICE_FIELDS:
            usd, nanos = usd_field_name(name), getattr(self.instance, name)
            if usd not in self.initial:
                self.initial[usd] = None if nanos is None else nanos_to_usd(nanos).normalize()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in PRICE_FIELDS:
            usd = usd_field_name(name)
            if usd not in cleaned:
                continue  # invalid or missing: the field's own error is shown
            try:
                nanos = None if cleaned[usd] is None else usd_to_nanos(cleaned[usd])
            except ValueError:
                self.add_error(usd, "At most 9 decimal places (one nano-dollar).")
                continue
            setattr(self.instance, name, nanos)
        return cleaned


def _mark_overrides(obj: Model | Endpoint) -> None:
    """Remember which catalog facts the operator changed (compared with the stored row, not the form's
    idea of "changed": a JSON list re-posted as text is no change), so catalog loads keep them."""
    facts = ENDPOINT_FACTS if isinstance(obj, Endpoint) else MODEL_FACTS
    attnames = {f: str(getattr(obj._meta.get_field(f), "attname", f)) for f in facts}
    stored = type(obj).objects.filter(pk=obj.pk).values(*attnames.values()).first()
    if stored is None:
        return
    changed = [f for f, att in attnames.items() if getattr(obj, att) != stored[att]]
    if changed:
        obj.overridden = sorted({*obj.overridden, *changed})


class CatalogAdmin(admin.ModelAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool) -> None:
        if change and isinstance(obj, Model | Endpoint):
            _mark_overrides(obj)
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


@admin.action(description="Revert to catalog (drop operator overrides)")
def revert_to_catalog(modeladmin: CatalogAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> None:
    rows = list(queryset.select_related("model") if queryset.model is Endpoint else queryset)
    try:
        n = catalog_revert(endpoints=rows) if queryset.model is Endpoint else catalog_revert(models=rows)
    except CatalogError as exc:
        messages.error(request, str(exc))
        return
    messages.success(request, f"{n} row(s) back to the catalog's values.")


class OverriddenFilter(admin.SimpleListFilter):
    title = "operator override"
    parameter_name = "overridden"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overridden"), ("no", "As in the catalog")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.exclude(overridden=[])
        if self.value() == "no":
            return queryset.filter(overridden=[])
        return queryset


def _override_badge(obj: Any) -> str:
    return "override: " + ", ".join(obj.overridden) if obj.overridden else "catalog"


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


class EndpointInlineFormSet(BaseInlineFormSet):
    def save_existing(self, form: Any, obj: Any, commit: bool = True) -> Any:
        _mark_overrides(obj)
        return super().save_existing(form, obj, commit)


class EndpointInline(admin.TabularInline):
    model = Endpoint
    form = EndpointForm
    formset = EndpointInlineFormSet
    extra = 0
    fields = ("tag", "provider", "upstream_model", "prompt_usd_per_mtok", "completion_usd_per_mtok", "is_enabled")
    readonly_fields = ("overridden",)
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
        "source",
    )
    list_filter = ("is_enabled", "retired", OverriddenFilter, "tokenizer", "is_moderated")
    search_fields = ("slug", "name", "canonical_slug", "hugging_face_id")
    readonly_fields = ("retired", "overridden")
    inlines = (EndpointInline,)
    actions = (enable, disable, revert_to_catalog)

    @admin.display(description="Source")
    def source(self, obj: Model) -> str:
        return _override_badge(obj)

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
        "source",
    )
    list_filter = ("is_enabled", "retired", OverriddenFilter, "variant", "quantization", "provider")
    search_fields = ("model__slug", "tag", "upstream_model", "provider__slug", "provider__name")
    list_select_related = ("model", "provider")
    autocomplete_fields = ("model", "provider")
    form = EndpointForm
    readonly_fields = ("retired", "overridden", "health")
    actions = (enable, disable, revert_to_catalog)

    @admin.display(description="Source")
    def source(self, obj: Endpoint) -> str:
        return _override_badge(obj)

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

    @admin.display(description="Prompt $/M tokens", ordering="prompt_nanos_per_mtok")
    def prompt_price(self, obj: Endpoint) -> str:
        return _usd(obj.prompt_nanos_per_mtok)

    @admin.display(description="Completion $/M tokens", ordering="completion_nanos_per_mtok")
    def completion_price(self, obj: Endpoint) -> str:
        return _usd(obj.completion_nanos_per_mtok)


def _usd(nanos: int) -> str:
    return f"${format(nanos_to_usd(nanos).normalize(), 'f')}"
