"""Catalog reads. The catalog is public (no organization scope); these serve the public API and pages.

/api/v1/models is hit often and changes rarely, so its JSON is built once per catalog version and
served as cached bytes; the version is the one gateways watch (proxy.catalog.snapshot).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.db.models.functions import Length

from organizations.models import ProviderCredential
from proxy.catalog.serialize import endpoint_json, model_endpoints_json, model_json, provider_json
from proxy.catalog.snapshot import catalog_version
from proxy.health import endpoint_stats
from proxy.models import Endpoint, Model, Provider

VERSION_CHECK_SECONDS = 1.0
_MAX_CACHED_QUERIES = 128


@dataclass(frozen=True)
class _Entry:
    record: dict[str, Any]
    output_modalities: frozenset[str]
    supported_parameters: frozenset[str]
    haystack: str  # lower-cased id, name and description, for `q`


@dataclass(frozen=True)
class _Listing:
    records: list[dict[str, Any]]
    body: bytes  # the unpaginated response, pre-encoded


@dataclass
class _Cache:
    version: str | None = None
    checked_at: float = 0.0
    entries: list[_Entry] | None = None
    responses: dict[tuple[str, str, str], _Listing] | None = None


_cache = _Cache()
_lock = threading.Lock()


def catalog_cache_clear() -> None:
    """Forget the cached /models bytes (tests; a catalog change is otherwise noticed within a second)."""
    global _cache
    with _lock:
        _cache = _Cache()


def _entries() -> list[_Entry]:
    out = []
    for model in Model.objects.filter(is_enabled=True).order_by("-created", "slug"):
        record = model_json(model)
        out.append(
            _Entry(
                record=record,
                output_modalities=frozenset(model.output_modalities or ()),
                supported_parameters=frozenset(model.supported_parameters or ()),
                haystack=f"{model.slug}\n{model.name}\n{model.description}".lower(),
            )
        )
    return out


def _fresh_cache() -> _Cache:
    global _cache
    now = time.monotonic()
    cache = _cache
    if cache.entries is not None and now - cache.checked_at < VERSION_CHECK_SECONDS:
        return cache
    version = str(catalog_version())
    if cache.entries is not None and version == cache.version:
        cache.checked_at = now
        return cache
    with _lock:
        _cache = _Cache(version=version, checked_at=now, entries=_entries(), responses={})
        return _cache


def _split(value: str | None) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in (value or "").split(",") if v.strip())


def _matches(entry: _Entry, modalities: frozenset[str], params: frozenset[str], q: str) -> bool:
    if "all" not in modalities and not (entry.output_modalities & modalities):
        return False
    if not params <= entry.supported_parameters:
        return False
    return not q or q in entry.haystack


def _filtered(output_modalities: str | None, supported_parameters: str | None, q: str | None) -> _Listing:
    cache = _fresh_cache()
    key = (output_modalities or "text", supported_parameters or "", (q or "").strip().lower())
    responses = cache.responses if cache.responses is not None else {}
    hit = responses.get(key)
    if hit is not None:
        return hit
    modalities = _split(key[0]) or frozenset({"text"})
    params = _split(key[1])
    records = [e.record for e in cache.entries or [] if _matches(e, modalities, params, key[2])]
    listing = _Listing(records=records, body=list_body(records, total_count=len(records), next_url=None))
    if len(responses) < _MAX_CACHED_QUERIES:
        responses[key] = listing
    return listing


def list_body(records: list[dict[str, Any]], *, total_count: int, next_url: str | None) -> bytes:
    """Contract 6.1's envelope: `data`, `total_count` (every match, not just this page) and `links.next`."""
    return orjson.dumps({"data": records, "total_count": total_count, "links": {"next": next_url}})


def model_list_json(
    *, output_modalities: str | None = None, supported_parameters: str | None = None, q: str | None = None
) -> tuple[bytes, int]:
    """The body of GET /api/v1/models (every match, one page) for these filters, and its model count.

    output_modalities defaults to text (as OpenRouter's does); `all` lists every model.
    """
    listing = _filtered(output_modalities, supported_parameters, q)
    return listing.body, len(listing.records)


def model_records(
    *, output_modalities: str | None = None, supported_parameters: str | None = None, q: str | None = None
) -> list[dict[str, Any]]:
    """The /models records matching these filters, newest first (shared, cached: do not mutate)."""
    return _filtered(output_modalities, supported_parameters, q).records


def model_slugs_usable_by(*, organization_id: int) -> frozenset[str]:
    """Models the organization can actually be routed to: some enabled endpoint whose provider the
    platform holds a key for (or needs none), or for which the organization brought its own key."""
    from proxy.credentials import provider_env

    byok = set(
        ProviderCredential.objects.filter(organization_id=organization_id, is_enabled=True).values_list(
            "provider_slug", flat=True
        )
    )
    usable: set[str] = set()
    providers: dict[str, bool] = {}
    rows = Endpoint.objects.filter(is_enabled=True, provider__is_enabled=True, model__is_enabled=True).values_list(
        "model__slug", "provider__slug", "provider__requires_api_key"
    )
    for model_slug, provider_slug, requires_key in rows:
        if provider_slug not in providers:
            api_key, base_url = provider_env(provider_slug)
            providers[provider_slug] = bool(api_key or base_url or not requires_key) or provider_slug in byok
        if providers[provider_slug]:
            usable.add(model_slug)
    return frozenset(usable)


def model_get(*, slug: str) -> Model | None:
    """A model by id, else by permaslug (links.details uses it; variants share it, so the base model wins)."""
    model = Model.objects.filter(slug=slug).first()
    if model is None:
        model = Model.objects.filter(canonical_slug=slug).order_by(Length("slug"), "slug").first()
    return model if model is not None and model.is_enabled else None


def model_endpoints_data(*, model: Model) -> dict[str, Any]:
    """The model's enabled endpoints, cheapest first, with their health stats (None where unknown)."""
    endpoints = list(
        model.endpoints.filter(is_enabled=True, provider__is_enabled=True)
        .select_related("provider")
        .order_by("prompt_nanos_per_mtok", "completion_nanos_per_mtok", "tag")
    )
    return model_endpoints_json(model, endpoints, endpoint_stats([e.pk for e in endpoints]))


def zdr_endpoints_data() -> list[dict[str, Any]]:
    """GET /endpoints/zdr: every enabled endpoint whose provider retains nothing (contract 6.2)."""
    endpoints = list(
        Endpoint.objects.filter(is_enabled=True, provider__is_enabled=True, provider__zdr=True, model__is_enabled=True)
        .select_related("provider", "model")
        .order_by("model__slug", "prompt_nanos_per_mtok", "tag")
    )
    stats = endpoint_stats([e.pk for e in endpoints])
    return [endpoint_json(e, e.model, stats.get(e.pk)) for e in endpoints]


def provider_list_data() -> list[dict[str, Any]]:
    return [provider_json(p) for p in Provider.objects.filter(is_enabled=True).order_by("name")]
