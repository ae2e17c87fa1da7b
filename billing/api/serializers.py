"""Input validation (DRF serializers) and the JSON shapes of OpenRouter's key, credits and generation objects.

Money leaves as USD numbers, the way OpenRouter shows it; inside it stays integer nano-dollars.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from accounts.models import User
from billing.api.selectors import KeyUsage
from billing.models import Generation
from billing.selectors import UsageWindows
from common.money import nanos_to_usd_number, usd_to_nanos
from organizations.models import ApiKey

# A BigInteger holds ~9.2e18 nano-dollars; a billion dollars is a generous and safe ceiling.
MAX_LIMIT_NANOS = 1_000_000_000 * 1_000_000_000
DATA_REGIONS = ("global", "europe", "us")
RATE_LIMIT_DEPRECATED = {"requests": -1, "interval": "10s", "note": "This field is deprecated and safe to ignore."}


class UsdLimitField(serializers.Field):
    """A credit limit in USD (JSON number or numeric string) -> integer nano-dollars. Never negative."""

    default_error_messages = {
        "invalid": "must be a number of US dollars.",
        "negative": "must be zero or more (US dollars); use null for no limit.",
        "precision": "has more decimal places than a nano-dollar.",
        "too_large": "is larger than this server accepts.",
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid")
        try:
            value = Decimal(str(data).strip())
        except InvalidOperation:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if value < 0:
            self.fail("negative")
        try:
            nanos = usd_to_nanos(value)
        except ValueError:
            self.fail("precision")
        if nanos > MAX_LIMIT_NANOS:
            self.fail("too_large")
        return nanos

    def to_representation(self, value: int) -> float:
        return nanos_to_usd_number(value)


class KeyCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    limit = UsdLimitField(required=False, allow_null=True)
    limit_reset = serializers.ChoiceField(choices=ApiKey.LimitReset.values, required=False, allow_null=True)
    include_byok_in_limit = serializers.BooleanField(required=False, default=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    creator_user_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)

    def validate_expires_at(self, value: datetime | None) -> datetime | None:
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future.")
        return value


class KeyUpdateInput(serializers.Serializer):
    """Every field optional; a field that is absent is left alone, `limit: null` removes the limit."""

    name = serializers.CharField(max_length=120, required=False)
    disabled = serializers.BooleanField(required=False)
    limit = UsdLimitField(required=False, allow_null=True)
    limit_reset = serializers.ChoiceField(choices=ApiKey.LimitReset.values, required=False, allow_null=True)
    include_byok_in_limit = serializers.BooleanField(required=False)


def user_ref(user: User | None) -> str | None:
    """How the API names a user (`creator_user_id`): "user_" + the user's public UUID in hex."""
    return f"user_{user.public_id.hex}" if user is not None else None


def user_public_id_from_ref(ref: str) -> uuid.UUID | None:
    """Accept what `user_ref` produces, or a bare UUID."""
    raw = ref.strip().removeprefix("user_")
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _usd(nanos: int | None) -> float | None:
    return nanos_to_usd_number(nanos) if nanos is not None else None


def _usage_fields(usage: KeyUsage) -> dict[str, float]:
    return {
        "usage": nanos_to_usd_number(usage.total),
        "usage_daily": nanos_to_usd_number(usage.daily),
        "usage_weekly": nanos_to_usd_number(usage.weekly),
        "usage_monthly": nanos_to_usd_number(usage.monthly),
        "byok_usage": nanos_to_usd_number(usage.byok_total),
        "byok_usage_daily": nanos_to_usd_number(usage.byok_daily),
        "byok_usage_weekly": nanos_to_usd_number(usage.byok_weekly),
        "byok_usage_monthly": nanos_to_usd_number(usage.byok_monthly),
    }


def _limit_remaining_nanos(api_key: ApiKey, usage: KeyUsage) -> int | None:
    if api_key.limit_nanos is None:
        return None
    return max(0, api_key.limit_nanos - usage.for_limit(api_key))


def key_json(api_key: ApiKey, usage: KeyUsage) -> dict[str, Any]:
    """The `Key` object of the management API (/keys)."""
    return {
        "hash": api_key.hash,
        "name": api_key.name,
        "label": api_key.label,
        "disabled": api_key.disabled,
        "limit": _usd(api_key.limit_nanos),
        "limit_remaining": _usd(_limit_remaining_nanos(api_key, usage)),
        "limit_reset": api_key.limit_reset,
        "include_byok_in_limit": api_key.include_byok_in_limit,
        **_usage_fields(usage),
        "created_at": _iso(api_key.created_at),
        "updated_at": _iso(api_key.updated_at),
        "expires_at": _iso(api_key.expires_at),
        "creator_user_id": user_ref(api_key.created_by),
        "workspace_id": workspace_id(api_key),
        # Keys are issued by the organization itself; none belongs to one of its app's end users.
        "external_user": None,
        "last_used_at": _iso(api_key.last_used_at),
    }


def workspace_id(api_key: ApiKey) -> str:
    """OpenRouter groups keys in workspaces; here an organization has exactly one, itself, so the
    workspace id is the organization's public id (what /key reports as `organization_id` too)."""
    return str(api_key.organization.public_id)


def _next_reset(limit_reset: str | None, now: datetime) -> datetime | None:
    """When the key's limit window starts over: UTC midnight, Monday midnight, or the 1st (as the gate counts)."""
    w = UsageWindows.at(now)
    if limit_reset == "daily":
        return w.day + timedelta(days=1)
    if limit_reset == "weekly":
        return w.week + timedelta(days=7)
    if limit_reset == "monthly":
        return (w.month + timedelta(days=32)).replace(day=1)
    return None


def key_budgets(api_key: ApiKey, usage: KeyUsage, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every budget checked for requests with this key. We have no guardrail or workspace budgets,
    so it is the key's own limit (scope `key_limit`) when it has one, else nothing."""
    if api_key.limit_nanos is None:
        return []
    spent = usage.for_limit(api_key)
    return [
        {
            "budget_id": None,
            "guardrail_id": None,
            "scope": "key_limit",
            "include_byok": api_key.include_byok_in_limit,
            "limit_usd": nanos_to_usd_number(api_key.limit_nanos),
            "spend_usd": nanos_to_usd_number(spent),
            "remaining_usd": nanos_to_usd_number(max(0, api_key.limit_nanos - spent)),
            "reset_interval": api_key.limit_reset,
            "resets_at": _iso(_next_reset(api_key.limit_reset, now or timezone.now())),
        }
    ]


def current_key_json(
    api_key: ApiKey, usage: KeyUsage, *, is_free_tier: bool, free_model_daily_requests: dict[str, int]
) -> dict[str, Any]:
    """The data of GET /key (and the legacy /auth/key)."""
    budgets = key_budgets(api_key, usage)
    return {
        "label": api_key.label,
        "limit": _usd(api_key.limit_nanos),
        "limit_remaining": _usd(_limit_remaining_nanos(api_key, usage)),
        "limit_reset": api_key.limit_reset,
        "include_byok_in_limit": api_key.include_byok_in_limit,
        **_usage_fields(usage),
        "is_free_tier": is_free_tier,
        "is_management_key": api_key.is_management,
        "is_provisioning_key": api_key.is_management,
        "expires_at": _iso(api_key.expires_at),
        "creator_user_id": user_ref(api_key.created_by),
        "organization_id": str(api_key.organization.public_id),
        "workspace_id": workspace_id(api_key),
        "rate_limit": dict(RATE_LIMIT_DEPRECATED),
        "free_model_daily_requests": free_model_daily_requests,
        # No regional routing here: every request may go to any region the catalog's providers serve.
        "allowed_data_regions": list(DATA_REGIONS),
        "budgets": budgets,
        # With one budget layer, the one that blocks first is that one.
        "effective_budget": budgets[0] if budgets else None,
    }


def _served_tier(provider_responses: Any) -> str | None:
    """The tier the serving attempt ran on, when the gateway recorded one (it does only if the upstream said)."""
    for response in reversed(provider_responses or []):
        if isinstance(response, dict) and response.get("status") == 200:
            tier = response.get("routed_service_tier")
            return tier if isinstance(tier, str) else None
    return None


def generation_json(gen: Generation) -> dict[str, Any]:
    """The data of GET /generation, from the settled record."""
    return {
        "id": gen.generation_id,
        "upstream_id": gen.upstream_id or None,
        "total_cost": nanos_to_usd_number(gen.cost_nanos),
        "usage": nanos_to_usd_number(gen.cost_nanos),
        # What the provider charged the organization's own account; only meaningful for BYOK.
        "upstream_inference_cost": nanos_to_usd_number(gen.list_cost_nanos) if gen.is_byok else None,
        "cache_discount": _usd(gen.cache_discount_nanos),
        "is_byok": gen.is_byok,
        "created_at": _iso(gen.created_at),
        "model": gen.model,
        "provider_name": gen.provider_name,
        "app_id": None,
        "origin": gen.http_referer or "",
        "http_referer": gen.http_referer or None,
        "app_title": gen.app_title or None,
        "user_agent": None,
        "external_user": gen.external_user or None,
        "streamed": gen.streamed,
        "cancelled": gen.cancelled,
        "latency": gen.latency_ms,
        "time_to_first_token": gen.ttft_ms,
        "generation_time": gen.generation_time_ms,
        "moderation_latency": None,
        "finish_reason": gen.finish_reason or None,
        "native_finish_reason": gen.native_finish_reason or None,
        "tokens_prompt": gen.tokens_prompt,
        "tokens_completion": gen.tokens_completion,
        "native_tokens_prompt": gen.tokens_prompt,
        "native_tokens_completion": gen.tokens_completion,
        "native_tokens_reasoning": gen.tokens_reasoning,
        "native_tokens_cached": gen.tokens_cached,
        "native_tokens_cache_write": gen.tokens_cache_write,
        "native_tokens_completion_images": 0,
        "num_media_prompt": None,
        "num_media_completion": None,
        "num_input_audio_prompt": None,
        "num_search_results": gen.num_search_results,
        "usage_estimated": gen.usage_estimated,
        "api_type": gen.api_type,
        "router": gen.router or None,
        "preset_id": None,
        "provider_responses": gen.provider_responses,
        # We route to providers wherever they are; the request was not pinned to a region.
        "data_region": "global",
        # No web plugin runs here, so no pages were fetched and no search engine was used.
        "num_fetches": None,
        "web_search_engine": gen.web_search_engine or None,
        "service_tier": _served_tier(gen.provider_responses),
        "workspace_id": str(gen.organization.public_id),
    }
