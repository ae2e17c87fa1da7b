"""Catalog rows as OpenRouter's JSON: /models records, /endpoints objects and /providers entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.money import price_per_token_str, price_per_unit_str
from proxy.models import Endpoint, Model, Provider


def model_json(model: Model) -> dict[str, Any]:
    """Contract 6.1, field for field; reproduces the snapshot record the model was loaded from."""
    extra = model.extra or {}
    top = dict(extra.get("top_provider") or {})
    top.setdefault("context_length", model.context_length)
    top.setdefault("max_completion_tokens", None)
    top["is_moderated"] = model.is_moderated
    canonical = model.canonical_slug or model.slug
    out: dict[str, Any] = {
        "id": model.slug,
        "canonical_slug": canonical,
        "hugging_face_id": model.hugging_face_id,
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "context_length": model.context_length,
        "architecture": {
            "modality": model.modality,
            "input_modalities": list(model.input_modalities or []),
            "output_modalities": list(model.output_modalities or []),
            "tokenizer": model.tokenizer,
            "instruct_type": model.instruct_type,
        },
        "pricing": dict(model.pricing or {"prompt": "0", "completion": "0"}),
        "top_provider": top,
        "per_request_limits": model.per_request_limits,
        "supported_parameters": list(model.supported_parameters or []),
        "default_parameters": model.default_parameters,
        "supported_voices": extra.get("supported_voices"),
        "knowledge_cutoff": model.knowledge_cutoff,
        "expiration_date": model.expiration_date,
        "links": extra.get("links") or {"details": f"/api/v1/models/{canonical}/endpoints"},
    }
    if model.reasoning is not None:
        out["reasoning"] = model.reasoning
    for key, value in extra.items():
        # "_"-keys are ours (the auto router's `_quality`, proxy/catalog/build.py), not OpenRouter's.
        if key not in out and key != "top_provider" and not key.startswith("_"):
            out[key] = value  # benchmarks, alias_target and any newer field, verbatim
    return out


def endpoint_pricing_json(ep: Endpoint) -> dict[str, Any]:
    pricing: dict[str, Any] = {
        "prompt": price_per_token_str(ep.prompt_nanos_per_mtok),
        "completion": price_per_token_str(ep.completion_nanos_per_mtok),
        "request": price_per_unit_str(ep.request_nanos),
        "image": price_per_unit_str(ep.image_nanos),
    }
    optional = {
        "input_cache_read": ep.cache_read_nanos_per_mtok,
        "input_cache_write": ep.cache_write_nanos_per_mtok,
        "internal_reasoning": ep.reasoning_nanos_per_mtok,
    }
    pricing.update({k: price_per_token_str(v) for k, v in optional.items() if v is not None})
    pricing["discount"] = 0
    return pricing


def tool_choice_support(supported_parameters: Iterable[str]) -> dict[str, bool]:
    """Which `tool_choice` values the endpoint honours. Without `tool_choice` support only the default
    ("auto", when it takes tools at all) applies; with it, the adapters translate all four."""
    params = set(supported_parameters)
    full = "tool_choice" in params
    return {"auto": full or "tools" in params, "none": full, "required": full, "function": full}


_HEALTH_FIELDS = ("uptime_last_30m", "uptime_last_5m", "uptime_last_1d", "latency_last_30m", "throughput_last_30m")


def endpoint_json(ep: Endpoint, model: Model, stats: Mapping[str, Any] | None) -> dict[str, Any]:
    """Contract 6.2 `PublicEndpoint`. `stats` are the health fields from proxy.health, or None."""
    short_name = model.name.split(": ", 1)[-1]
    out: dict[str, Any] = {
        "name": f"{ep.provider.name}: {short_name}",
        "model_id": model.slug,
        "model_name": short_name,
        "provider_name": ep.provider.name,
        "tag": ep.tag,
        "context_length": ep.context_length,
        "max_completion_tokens": ep.max_completion_tokens,
        "max_prompt_tokens": ep.max_prompt_tokens,
        "pricing": endpoint_pricing_json(ep),
        "quantization": ep.quantization,
        "supported_parameters": list(ep.supported_parameters or []),
        "status": 0,
        "supports_implicit_caching": ep.supports_implicit_caching,
        "supports_tool_choice": tool_choice_support(ep.supported_parameters or ()),
        # We run no provider-native server tools and no diarization; no endpoint is pinned to a tier.
        "native_tools": {},
        "service_tier": None,
        "supports_diarization": False,
    }
    for key in _HEALTH_FIELDS:
        out[key] = (stats or {}).get(key)
    # Ours, beyond OpenRouter's object (docs/routing.md "Tool-call quality", "Seeded statistics"):
    # the share of bad tool calls; the published figures (catalog or operator); and where each figure
    # came from. OpenRouter's fields above stay measured-only ("measured", or null: no data yet);
    # `latency`, `throughput` and `uptime` name the source of the figure routing uses: "measured",
    # "catalog" (the published one, while there are no samples) or null (neither).
    out["tool_call_error_rate_last_30m"] = (stats or {}).get("tool_call_error_rate_last_30m")
    published = published_stats_json(ep)
    out["published_stats"] = published
    source: dict[str, str | None] = {
        key: "measured" if out[key] is not None else None for key in (*_HEALTH_FIELDS, "tool_call_error_rate_last_30m")
    }
    measured_uptime = any(out[k] is not None for k in ("uptime_last_30m", "uptime_last_5m", "uptime_last_1d"))
    for figure, measured in (
        ("latency", out["latency_last_30m"] is not None),
        ("throughput", out["throughput_last_30m"] is not None),
        ("uptime", measured_uptime),
    ):
        source[figure] = "measured" if measured else "catalog" if published[figure] is not None else None
    out["stats_source"] = source
    return out


def published_stats_json(ep: Endpoint) -> dict[str, float | int | None]:
    """Uptime in percent (a JSON number, like OpenRouter's uptime fields), latency in ms, tokens/s."""
    uptime = ep.published_uptime
    return {
        "uptime": None if uptime is None else float(uptime),
        "latency": ep.published_latency_ms,
        "throughput": ep.published_throughput_tps,
    }


def model_endpoints_json(model: Model, endpoints: Iterable[Endpoint], stats: Mapping[int, Any]) -> dict[str, Any]:
    return {
        "id": model.slug,
        "name": model.name,
        "created": model.created,
        "description": model.description,
        "architecture": {
            "tokenizer": model.tokenizer,
            "instruct_type": model.instruct_type,
            "modality": model.modality,
            "input_modalities": list(model.input_modalities or []),
            "output_modalities": list(model.output_modalities or []),
        },
        "endpoints": [endpoint_json(ep, model, stats.get(ep.pk)) for ep in endpoints],
    }


def provider_json(provider: Provider) -> dict[str, Any]:
    """Contract 6.3."""
    return {
        "name": provider.name,
        "slug": provider.slug,
        "privacy_policy_url": provider.privacy_policy_url,
        "terms_of_service_url": provider.terms_of_service_url,
        "status_page_url": provider.status_page_url,
        "headquarters": provider.headquarters,
        "datacenters": list(provider.datacenters or []),
    }
