"""catalog_load: upsert a catalog file (docs/catalog.md) into Provider / Model / Endpoint.

The file owns catalog facts (names, prices, limits, quantization); the admin owns operating settings
(a provider's base URL, adapter, data policy, timeouts; an endpoint's upstream model name; every
enabled flag), so reloading the file on each start never undoes an operator's edit. A provider the
file does not list is the operator's (`manage.py provider_add`, proxy.catalog.self_hosted): its
endpoints are never retired, nor the models they serve.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from proxy.catalog.build import FORMAT
from proxy.catalog.published import published_fields
from proxy.models import Endpoint, Model, Provider


class CatalogError(Exception):
    """The file cannot be loaded; nothing was written."""


@dataclass(frozen=True)
class LoadResult:
    providers: int
    models: int
    endpoints: int
    endpoints_retired: int


MODEL_COLUMNS = {
    "canonical_slug",
    "hugging_face_id",
    "name",
    "created",
    "description",
    "context_length",
    "architecture",
    "pricing",
    "per_request_limits",
    "supported_parameters",
    "default_parameters",
    "knowledge_cutoff",
    "expiration_date",
    "reasoning",
    "id",
}
PROVIDER_FACTS = [
    "name",
    "privacy_policy_url",
    "terms_of_service_url",
    "status_page_url",
    "headquarters",
    "datacenters",
]
PROVIDER_SETTINGS = ["adapter", "base_url", "retains_prompts", "trains_on_prompts", "zdr"]
MODEL_FACTS = [
    "canonical_slug",
    "hugging_face_id",
    "name",
    "created",
    "description",
    "context_length",
    "modality",
    "input_modalities",
    "output_modalities",
    "tokenizer",
    "instruct_type",
    "supported_parameters",
    "default_parameters",
    "per_request_limits",
    "is_moderated",
    "knowledge_cutoff",
    "expiration_date",
    "reasoning",
    "pricing",
    "extra",
    "retired",
    "is_enabled",
]
ENDPOINT_FACTS = [
    "provider",
    "variant",
    "quantization",
    "context_length",
    "max_completion_tokens",
    "max_prompt_tokens",
    "prompt_nanos_per_mtok",
    "completion_nanos_per_mtok",
    "cache_read_nanos_per_mtok",
    "cache_write_nanos_per_mtok",
    "reasoning_nanos_per_mtok",
    "request_nanos",
    "image_nanos",
    "supported_parameters",
    "supports_implicit_caching",
    "published_uptime",
    "published_latency_ms",
    "published_throughput_tps",
    "retired",
    "is_enabled",
]


def catalog_read(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"catalog file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read catalog file {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CatalogError(f'{path} is not a catalog file (expected "format": "{FORMAT}")')
    return data


def _model_fields(record: dict[str, Any]) -> dict[str, Any]:
    arch = record.get("architecture") or {}
    top = record.get("top_provider") or {}
    return {
        "canonical_slug": record.get("canonical_slug") or record["id"],
        "hugging_face_id": record.get("hugging_face_id"),
        "name": record.get("name") or record["id"],
        "created": int(record.get("created") or 0),
        "description": record.get("description") or "",
        "context_length": int(record.get("context_length") or 0),
        "modality": arch.get("modality") or "",
        "input_modalities": list(arch.get("input_modalities") or []),
        "output_modalities": list(arch.get("output_modalities") or []),
        "tokenizer": arch.get("tokenizer") or "",
        "instruct_type": arch.get("instruct_type"),
        "supported_parameters": list(record.get("supported_parameters") or []),
        "default_parameters": record.get("default_parameters"),
        "per_request_limits": record.get("per_request_limits"),
        "is_moderated": bool(top.get("is_moderated")),
        "knowledge_cutoff": record.get("knowledge_cutoff"),
        "expiration_date": record.get("expiration_date"),
        "reasoning": record.get("reasoning"),
        "pricing": dict(record.get("pricing") or {}),
        # Kept verbatim so /models reproduces OpenRouter's record (top_provider, links, benchmarks, ...).
        "extra": {k: v for k, v in record.items() if k not in MODEL_COLUMNS},
        "retired": False,
    }


def _endpoint_fields(entry: dict[str, Any], model: Model, provider: Provider) -> dict[str, Any]:
    price = entry.get("pricing") or {}
    return {
        "provider_id": provider.pk,
        "variant": entry.get("variant") or "standard",
        "quantization": entry.get("quantization"),
        "context_length": int(entry.get("context_length") or model.context_length),
        "max_completion_tokens": entry.get("max_completion_tokens"),
        "max_prompt_tokens": entry.get("max_prompt_tokens"),
        "prompt_nanos_per_mtok": int(price.get("prompt") or 0),
        "completion_nanos_per_mtok": int(price.get("completion") or 0),
        "cache_read_nanos_per_mtok": price.get("cache_read"),
        "cache_write_nanos_per_mtok": price.get("cache_write"),
        "reasoning_nanos_per_mtok": price.get("reasoning"),
        "request_nanos": int(price.get("request") or 0),
        "image_nanos": int(price.get("image") or 0),
        "supported_parameters": list(entry.get("supported_parameters") or model.supported_parameters),
        "supports_implicit_caching": bool(entry.get("supports_implicit_caching", False)),
        **published_fields(entry),
        "retired": False,
    }


def _kept(fields: dict[str, Any], overridden: list[str]) -> dict[str, Any]:
    """The file's facts minus those an operator edited in the admin (their edit wins until reverted)."""
    return {k: v for k, v in fields.items() if k not in overridden} if overridden else fields


def _assign(obj: Any, fields: dict[str, Any]) -> bool:
    """Set fields that differ; True when anything changed (unchanged rows are not rewritten)."""
    changed = False
    for key, value in fields.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _upsert_providers(entries: list[dict[str, Any]]) -> dict[str, Provider]:
    existing = {p.slug: p for p in Provider.objects.all()}
    create: list[Provider] = []
    for entry in entries:
        facts = {k: entry.get(k) for k in PROVIDER_FACTS}
        facts["datacenters"] = facts["datacenters"] or []
        provider = existing.get(entry["slug"])
        if provider is None:
            settings_ = {k: entry[k] for k in PROVIDER_SETTINGS if k in entry}
            create.append(Provider(slug=entry["slug"], **facts, **settings_))
        else:
            for key, value in facts.items():
                setattr(provider, key, value)
    Provider.objects.bulk_create(create)
    Provider.objects.bulk_update(list(existing.values()), PROVIDER_FACTS)
    return {p.slug: p for p in Provider.objects.all()}


def _upsert_models(entries: list[dict[str, Any]], operator_providers: set[int]) -> dict[str, Model]:
    existing = {m.slug: m for m in Model.objects.all()}
    create: list[Model] = []
    update: list[Model] = []
    for entry in entries:
        record = entry["record"]
        fields = _model_fields(record)
        if entry.get("quality"):  # the auto router's figures (build.py); "_" keeps them off /models
            fields["extra"]["_quality"] = entry["quality"]
        model = existing.get(record["id"])
        if model is None:
            create.append(Model(slug=record["id"], **fields))
            continue
        if model.retired:
            model.is_enabled = True  # the loader disabled it; it is back in the file
        if _assign(model, _kept(fields, model.overridden)):
            update.append(model)
    Model.objects.bulk_create(create, batch_size=200)
    Model.objects.bulk_update(update, MODEL_FACTS, batch_size=200)
    listed = {e["record"]["id"] for e in entries}
    absent = Model.objects.exclude(slug__in=listed).filter(retired=False)
    absent = absent.exclude(endpoints__provider_id__in=operator_providers)
    absent.update(retired=True, is_enabled=False)
    return {m.slug: m for m in Model.objects.all()}


def _upsert_endpoints(
    entries: list[dict[str, Any]],
    models: dict[str, Model],
    providers: dict[str, Provider],
    operator_providers: set[int],
) -> int:
    existing = {(e.model_id, e.tag): e for e in Endpoint.objects.all()}
    create: list[Endpoint] = []
    update: list[Endpoint] = []
    keep: set[int] = set()
    for entry in entries:
        model = models[entry["record"]["id"]]
        for ep in entry.get("endpoints") or []:
            provider = providers.get(ep.get("provider", ""))
            if provider is None:
                raise CatalogError(f"{model.slug} @ {ep.get('tag')}: unknown provider {ep.get('provider')!r}")
            fields = _endpoint_fields(ep, model, provider)
            current = existing.get((model.pk, ep["tag"]))
            if current is None:
                create.append(
                    Endpoint(model=model, tag=ep["tag"], upstream_model=ep.get("upstream_model") or "", **fields)
                )
                continue
            if current.retired:
                current.is_enabled = True
            if _assign(current, _kept(fields, current.overridden)):
                update.append(current)
            keep.add(current.pk)
    Endpoint.objects.bulk_create(create, batch_size=500)
    Endpoint.objects.bulk_update(update, ENDPOINT_FACTS, batch_size=500)
    absent = [
        e.pk
        for e in existing.values()
        if e.pk not in keep and not e.retired and e.provider_id not in operator_providers
    ]
    return Endpoint.objects.filter(pk__in=absent).update(retired=True, is_enabled=False)


def catalog_load(*, path: str | Path | None = None, data: dict[str, Any] | None = None) -> LoadResult:
    """Idempotent upsert of a whole catalog in one transaction, then tell the gateways it changed."""
    if data is None:
        if path is None:
            raise CatalogError("catalog_load needs a path or data")
        data = catalog_read(path)
    try:
        with transaction.atomic():
            providers = _upsert_providers(list(data.get("providers") or []))
            listed = {p["slug"] for p in data.get("providers") or []}
            operator = {p.pk for slug, p in providers.items() if slug not in listed}
            models = _upsert_models(list(data.get("models") or []), operator)
            retired = _upsert_endpoints(list(data.get("models") or []), models, providers, operator)
            endpoints = Endpoint.objects.filter(retired=False).count()
            transaction.on_commit(catalog_changed)
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"malformed catalog entry: {exc!r}") from exc
    return LoadResult(providers=len(providers), models=len(models), endpoints=endpoints, endpoints_retired=retired)


def catalog_provider_slugs(path: str | Path | None = None) -> set[str]:
    """The provider slugs the catalog file (default settings.CATALOG_FILE) owns."""
    return {p["slug"] for p in catalog_read(path or settings.CATALOG_FILE).get("providers") or []}


def catalog_changed() -> None:
    """After any committed catalog change (load or admin edit): gateways and the /models cache rebuild."""
    from proxy.catalog.snapshot import catalog_bump_version

    catalog_bump_version()


def catalog_revert(*, models: list[Model] | None = None, endpoints: list[Endpoint] | None = None) -> int:
    """Drop operators' overrides and put the catalog file's values back on those rows. Returns rows reverted.

    A row the file does not list (an operator's own provider) just loses its override marks.
    """
    models, endpoints = models or [], endpoints or []
    data = catalog_read(settings.CATALOG_FILE)
    records = {m["record"]["id"]: m for m in data.get("models") or []}
    providers = {p.slug: p for p in Provider.objects.all()}
    with transaction.atomic():
        for model in models:
            entry = records.get(model.slug)
            if entry is not None:
                _assign(model, _model_fields(entry["record"]))
            model.overridden = []
            model.save()
        for endpoint in endpoints:
            entry = records.get(endpoint.model.slug)
            listed = {ep["tag"]: ep for ep in (entry or {}).get("endpoints") or []}
            ep = listed.get(endpoint.tag)
            provider = providers.get(ep.get("provider", "")) if ep else None
            if ep is not None and provider is not None:
                _assign(endpoint, _endpoint_fields(ep, endpoint.model, provider))
            endpoint.overridden = []
            endpoint.save()
        transaction.on_commit(catalog_changed)
    return len(models) + len(endpoints)
