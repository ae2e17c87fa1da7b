"""The public model catalog page: search that ranks exact and prefix matches first, filters, paging.

Reads the same cached records as GET /api/v1/models (proxy.selectors.model_records), so the page and
the API never disagree about what is listed. By default only text-output models are shown: those are
the ones the gateway's chat and completion endpoints can serve.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics.public import endpoint_health_series, model_popularity
from openrouter_site.pages.catalog_selectors import catalog_provider_index
from proxy import selectors as catalog

PAGE_SIZE = 40
OUTPUTS = {"text": "Text", "image": "Image", "audio": "Audio", "all": "Any (incl. embeddings, speech)"}
INPUTS = {"": "Any input", "image": "Images", "file": "Files", "audio": "Audio", "video": "Video"}
CAPABILITIES = {"tools": "Tool calling", "reasoning": "Reasoning", "structured_outputs": "Structured outputs"}
SORTS = {
    "": "Best match / newest",
    "newest": "Newest",
    "popular": "Most used (7 days)",
    "price-asc": "Input price: low to high",
    "price-desc": "Input price: high to low",
    "context": "Context: longest first",
}
POPULARITY_CACHE_SECONDS = 300
_WORD = re.compile(r"[^a-z0-9.]+")


def search_rank(record: dict[str, Any], q: str) -> int:
    """0 exact id/name, 1 model-name prefix, 2 a word starts with q, 3 inside id/name, 4 description only.

    The API's filter matches descriptions too, so without this "claude" could list a model whose
    description merely mentions Claude above Claude itself.
    """
    slug = record["id"].lower()
    name = record["name"].lower()
    short = slug.split("/", 1)[-1].lstrip("~")
    bare_name = name.split(": ", 1)[-1]  # "Anthropic: Claude Opus 4" -> "claude opus 4"
    if q in (slug, name, short, bare_name):
        return 0
    if short.startswith(q) or name.startswith(q) or bare_name.startswith(q):
        return 1
    words = _WORD.split(f"{slug} {name}")
    if any(word.startswith(q) for word in words if word):
        return 2
    if q in slug or q in name:
        return 3
    return 4


def per_mtok(per_token: str | None) -> str:
    """Per-token price string -> "$x.xx" per million tokens; "-1" (priced by the routed model) -> "varies"."""
    try:
        value = Decimal(per_token or "0")
    except InvalidOperation:
        return "-"
    if value < 0:
        return "varies"
    if value == 0:
        return "free"
    per_m = (value * 1_000_000).quantize(Decimal("0.001")).normalize()
    text = f"{per_m:,f}"
    whole, _, frac = text.partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"  # "$3.20", "$0.075", never "$3.2"


def _prompt_price(record: dict[str, Any]) -> Decimal | None:
    """The per-token input price, None where unknown or priced by the routed model ("-1")."""
    try:
        value = Decimal(record["pricing"].get("prompt") or "0")
    except InvalidOperation:
        return None
    return None if value < 0 else value


def _popularity() -> dict[str, int]:
    """Tokens per model over the last 7 days of our own traffic (rollups), shared through the cache."""
    data = cache.get_or_set("catalog:popularity:v1", model_popularity, POPULARITY_CACHE_SECONDS)
    return data if isinstance(data, dict) else model_popularity()


def sort_records(records: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """Sorted copy; ties keep the catalog's order (newest first), and unpriced models go last either way."""
    if sort in ("price-asc", "price-desc"):
        sign = 1 if sort == "price-asc" else -1

        def by_price(record: dict[str, Any]) -> tuple[bool, Decimal]:
            price = _prompt_price(record)
            return price is None, sign * (price or Decimal(0))

        return sorted(records, key=by_price)
    if sort == "context":
        return sorted(records, key=lambda r: -(r["context_length"] or 0))
    if sort == "popular":
        tokens = _popularity()
        return sorted(records, key=lambda r: -tokens.get(r["id"], 0))
    return records  # "newest" and the default: the catalog's own order


def _row(record: dict[str, Any], providers: frozenset[str]) -> dict[str, Any]:
    arch = record["architecture"]
    return {
        "id": record["id"],
        "name": record["name"],
        "context_length": record["context_length"],
        "inputs": arch["input_modalities"],
        "outputs": arch["output_modalities"],
        "prompt": per_mtok(record["pricing"].get("prompt")),
        "completion": per_mtok(record["pricing"].get("completion")),
        "tools": "tools" in record["supported_parameters"],
        "reasoning": "reasoning" in record["supported_parameters"],
        "provider_count": len(providers),
    }


@require_GET
def models_page(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    output = request.GET.get("output", "text")
    output = output if output in OUTPUTS else "text"
    input_kind = request.GET.get("input", "")
    input_kind = input_kind if input_kind in INPUTS else ""
    capabilities = [c for c in request.GET.getlist("supports") if c in CAPABILITIES]
    provider = request.GET.get("provider", "")
    sort = request.GET.get("sort", "")
    sort = sort if sort in SORTS else ""
    index = catalog_provider_index()
    provider = provider if provider in dict(index.providers) else ""

    records = catalog.model_records(
        output_modalities=output, supported_parameters=",".join(capabilities) or None, q=q or None
    )
    if input_kind:
        records = [r for r in records if input_kind in r["architecture"]["input_modalities"]]
    if provider:
        records = [r for r in records if provider in index.by_model.get(r["id"], frozenset())]
    if q and not sort:
        lowered = q.lower()
        records = sorted(records, key=lambda r: search_rank(r, lowered))  # stable: newest first within a rank
    else:
        records = sort_records(records, sort)

    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "active_nav": "models",
        "q": q,
        "output": output,
        "outputs": OUTPUTS,
        "input": input_kind,
        "inputs": INPUTS,
        "capabilities": CAPABILITIES,
        "supports": capabilities,
        "provider": provider,
        "providers": index.providers,
        "sort": sort,
        "sorts": SORTS,
        "page": page,
        "rows": [_row(r, index.by_model.get(r["id"], frozenset())) for r in page.object_list],
        "query": query.urlencode(),
    }
    return render(request, "pages/models.html", context)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%" if value <= 1 else f"{value:.1f}%"


HEALTH_LABELS = {"24h": "24 h", "7d": "7 d"}
HEALTH_CACHE_SECONDS = 120


def _health(slug: str, range_key: str) -> dict[str, Any]:
    """The model's per-endpoint hourly health, shared through the cache (the rollups change hourly)."""
    key = f"model-health:v1:{range_key}:{slug}"[:200]
    data = cache.get_or_set(key, lambda: endpoint_health_series(model=slug, range_key=range_key), HEALTH_CACHE_SECONDS)
    return data if isinstance(data, dict) else endpoint_health_series(model=slug, range_key=range_key)


@require_GET
def model_page(request: HttpRequest, model_id: str) -> HttpResponse:
    """One model: description, context, parameters, and each endpoint's price and measured health."""
    model = catalog.model_get(slug=model_id)
    if model is None:
        raise Http404("No such model")
    data = catalog.model_endpoints_data(model=model)
    endpoints = [
        {
            "provider": ep["provider_name"],
            "tag": ep["tag"],
            "context_length": ep["context_length"],
            "max_completion_tokens": ep["max_completion_tokens"],
            "quantization": ep["quantization"],
            "prompt": per_mtok(ep["pricing"]["prompt"]),
            "completion": per_mtok(ep["pricing"]["completion"]),
            "cache_read": per_mtok(ep["pricing"].get("input_cache_read"))
            if "input_cache_read" in ep["pricing"]
            else "",
            "uptime": _percent(ep["uptime_last_30m"]),
            "latency": ep["latency_last_30m"],
            "throughput": ep["throughput_last_30m"],
            "stats_source": ep["stats_source"],  # measured, else the catalog's published figure
            "published_stats": ep["published_stats"],
        }
        for ep in data["endpoints"]
    ]
    health_range = request.GET.get("health", "24h")
    health_range = health_range if health_range in HEALTH_LABELS else "24h"
    context = {
        "active_nav": "models",
        "model": model,
        "health": _health(model.slug, health_range),
        "health_range": health_range,
        "health_ranges": HEALTH_LABELS,
        "endpoints": endpoints,
        "parameters": sorted(model.supported_parameters or []),
        "prompt": per_mtok((model.pricing or {}).get("prompt")),
        "completion": per_mtok((model.pricing or {}).get("completion")),
        "api_base": request.build_absolute_uri("/api/v1"),
    }
    return render(request, "pages/model.html", context)
