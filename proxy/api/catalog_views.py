"""Public catalog API (no key needed): /models, /models/count, /models/{author}/{slug}/endpoints, /providers.

Plain Django views rather than DRF: they are public, read-only and serve pre-encoded bytes.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from proxy import selectors
from proxy.catalog.serialize import model_json

JSON = "application/json"


def _json(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(payload), content_type=JSON, status=status)


def _not_found(message: str) -> HttpResponse:
    return _json({"error": {"code": 404, "message": message, "metadata": None}}, status=404)


def _filters(request: HttpRequest) -> dict[str, str | None]:
    return {
        "output_modalities": request.GET.get("output_modalities"),
        "supported_parameters": request.GET.get("supported_parameters"),
        "q": request.GET.get("q"),
    }


@require_GET
def models_list(request: HttpRequest) -> HttpResponse:
    body, _ = selectors.model_list_json(**_filters(request))
    response = HttpResponse(body, content_type=JSON)
    response["Cache-Control"] = "public, max-age=60"
    return response


@require_GET
def models_count(request: HttpRequest) -> HttpResponse:
    _, count = selectors.model_list_json(**_filters(request))
    return _json({"data": {"count": count}})


@require_GET
def model_detail(request: HttpRequest, author: str, slug: str) -> HttpResponse:
    model = selectors.model_get(slug=f"{author}/{slug}")
    if model is None:
        return _not_found(f"Model {author}/{slug} not found")
    return _json({"data": model_json(model)})


@require_GET
def model_endpoints(request: HttpRequest, author: str, slug: str) -> HttpResponse:
    model = selectors.model_get(slug=f"{author}/{slug}")
    if model is None:
        return _not_found(f"Model {author}/{slug} not found")
    return _json({"data": selectors.model_endpoints_data(model=model)})


@require_GET
def providers_list(request: HttpRequest) -> HttpResponse:
    return _json({"data": selectors.provider_list_data()})


@require_GET
def models_page(request: HttpRequest) -> HttpResponse:
    """The public browser page listing the catalog (lives here because proxy has no views module of ours)."""
    q = request.GET.get("q", "").strip()
    rows = [
        {
            "id": m["id"],
            "name": m["name"],
            "context_length": m["context_length"],
            "modality": m["architecture"]["modality"],
            "prompt_per_mtok": _per_mtok(m["pricing"].get("prompt")),
            "completion_per_mtok": _per_mtok(m["pricing"].get("completion")),
        }
        for m in selectors.model_list_for_page(q=q)
    ]
    return render(request, "proxy/models.html", {"models": rows, "q": q})


def _per_mtok(per_token: str | None) -> str:
    """Per-token price string -> "$x.xx / M" for people; "-1" (priced by the routed model) -> "varies"."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(per_token or "0")
    except InvalidOperation:
        return ""
    if value < 0:
        return "varies"
    if value == 0:
        return "free"
    per_m = (value * 1_000_000).normalize()
    return f"${per_m:f}"
