"""Catalog API: public /models, /models/count, /models/{author}/{slug}(/endpoints), /model/..., /providers,
and the key-authenticated /models/user.

Plain Django views rather than DRF where they are public, read-only and serve pre-encoded bytes;
/models/user needs the key, so it is a DRF view with the API's bearer authentication.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from rest_framework.request import Request
from rest_framework.views import APIView

from billing.api.views import HasApiKey
from organizations.models import ApiKey
from proxy import selectors
from proxy.catalog.serialize import model_json
from proxy.catalog.snapshot import catalog_from_db
from proxy.gateway.policy import data_policy_of, key_models_of, visible_models

JSON = "application/json"
DEFAULT_PAGE = 500  # contract 6.1: `limit` defaults to 500, at most 1000
MAX_PAGE = 1000


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


def _page_params(request: HttpRequest) -> tuple[int, int] | None:
    """(offset, limit) when the client asked for a page (contract 6.1: only then is the list cut)."""
    raw_offset, raw_limit = request.GET.get("offset"), request.GET.get("limit")
    if raw_offset is None and raw_limit is None:
        return None
    offset = _whole(raw_offset, "offset", default=0)
    limit = _whole(raw_limit, "limit", default=DEFAULT_PAGE)
    if not 1 <= limit <= MAX_PAGE:
        raise _BadParam(f"limit must be between 1 and {MAX_PAGE}")
    return offset, limit


class _BadParam(ValueError):
    pass


def _whole(raw: str | None, name: str, *, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit():
        raise _BadParam(f"{name} must be a whole number")
    return int(raw.strip())


def _listing(request: HttpRequest, records: list[dict[str, Any]]) -> HttpResponse:
    """One page of `records` (or all of them), with `total_count` and a `links.next` that keeps the filters."""
    try:
        page = _page_params(request)
    except _BadParam as exc:
        return _json({"error": {"code": 400, "message": str(exc), "metadata": None}}, status=400)
    if page is None:
        return HttpResponse(selectors.list_body(records, total_count=len(records), next_url=None), content_type=JSON)
    offset, limit = page
    next_url = None
    if offset + limit < len(records):
        query = request.GET.copy()
        query["offset"], query["limit"] = str(offset + limit), str(limit)
        next_url = f"{request.path}?{query.urlencode()}"
    body = selectors.list_body(records[offset : offset + limit], total_count=len(records), next_url=next_url)
    return HttpResponse(body, content_type=JSON)


@csrf_exempt  # bearer-key/public JSON API: no cookie session to forge; a POST gets 405, not 403
@require_GET
def models_list(request: HttpRequest) -> HttpResponse:
    if "offset" in request.GET or "limit" in request.GET:
        response = _listing(request, selectors.model_records(**_filters(request)))
    else:
        body, _ = selectors.model_list_json(**_filters(request))
        response = HttpResponse(body, content_type=JSON)
    response["Cache-Control"] = "public, max-age=60"
    return response


class UserModelsView(APIView):
    """GET /models/user: the catalog as the calling key's organization can use it (a provider it can
    reach, through the platform's key or its own). Same filters and envelope as /models."""

    permission_classes = [HasApiKey]

    def get(self, request: Request) -> HttpResponse:
        api_key = request.auth
        assert isinstance(api_key, ApiKey)  # HasApiKey guarantees it
        usable = selectors.model_slugs_usable_by(organization_id=api_key.organization_id)
        # The organization's data policy and the key's model restriction narrow it further.
        policy, key_models = data_policy_of(api_key.organization), key_models_of(api_key)
        if not policy.is_open or key_models:
            usable = usable & visible_models(catalog_from_db(), policy, key_models)
        records = [r for r in selectors.model_records(**_filters(request._request)) if r["id"] in usable]
        response = _listing(request._request, records)
        response["Cache-Control"] = "private, no-store"
        return response


@csrf_exempt
@require_GET
def models_count(request: HttpRequest) -> HttpResponse:
    _, count = selectors.model_list_json(**_filters(request))
    return _json({"data": {"count": count}})


@csrf_exempt
@require_GET
def model_detail(request: HttpRequest, author: str, slug: str) -> HttpResponse:
    model = selectors.model_get(slug=f"{author}/{slug}")
    if model is None:
        return _not_found(f"Model {author}/{slug} not found")
    return _json({"data": model_json(model)})


@csrf_exempt
@require_GET
def model_retrieve(request: HttpRequest, author: str, slug: str) -> HttpResponse:
    """GET /models/{author}/{slug}, what the openai SDK's `models.retrieve("author/slug")` calls: the
    record itself at the top level (no `data` wrapper), with the OpenAI model object's `object` and
    `owned_by` beside OpenRouter's fields."""
    model = selectors.model_get(slug=f"{author}/{slug}")
    if model is None:
        return _not_found(f"Model {author}/{slug} not found")
    return _json({**model_json(model), "object": "model", "owned_by": author})


@csrf_exempt
@require_GET
def model_endpoints(request: HttpRequest, author: str, slug: str) -> HttpResponse:
    model = selectors.model_get(slug=f"{author}/{slug}")
    if model is None:
        return _not_found(f"Model {author}/{slug} not found")
    return _json({"data": selectors.model_endpoints_data(model=model)})


@csrf_exempt
@require_GET
def zdr_endpoints(request: HttpRequest) -> HttpResponse:
    return _json({"data": selectors.zdr_endpoints_data()})


@csrf_exempt
@require_GET
def embedding_models(request: HttpRequest) -> HttpResponse:
    """GET /embeddings/models: the /models listing of models whose output is embeddings."""
    return _listing(request, selectors.model_records(output_modalities="embeddings"))


@csrf_exempt
@require_GET
def providers_list(request: HttpRequest) -> HttpResponse:
    return _json({"data": selectors.provider_list_data()})
