"""Operator-added providers: a self-hosted OpenAI-compatible server (vLLM, Ollama, llama.cpp, TGI ...).

`manage.py provider_add` calls these. The provider is an ordinary Provider row whose slug is not in
the catalog file, which is what marks it as the operator's: catalog_load never retires its endpoints,
nor a model one of them serves (proxy.catalog.services). Its models appear in /api/v1/models and route
like any other; its key, if the server wants one, is `<SLUG>_API_KEY` like every provider's.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from common.money import price_per_token_str
from proxy.models import Endpoint, Model, Provider

DISCOVERY_TIMEOUT_S = 10.0
DEFAULT_CONTEXT_LENGTH = 8192
# What an OpenAI-compatible server accepts; the gateway drops parameters an endpoint does not list.
SUPPORTED_PARAMETERS = [
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "response_format",
]
_NOT_IN_SLUG = re.compile(r"[^a-z0-9._/-]+")


class SelfHostedError(Exception):
    """The server could not be asked, or answered something that is not a model list."""


@dataclass(frozen=True)
class ServedModel:
    id: str  # the name the server expects in `model`
    context_length: int | None = None


@dataclass(frozen=True)
class AddedModel:
    slug: str  # the id clients send to this gateway
    upstream_model: str
    created: bool  # a new model row (False: an endpoint added to an existing catalog model)


def served_models_discover(base_url: str, api_key: str | None = None) -> list[ServedModel]:
    """GET {base_url}/models (the OpenAI list; vLLM adds max_model_len). Sync: an operator command."""
    request = urllib.request.Request(f"{base_url.rstrip('/')}/models", headers={"Accept": "application/json"})  # noqa: S310  # the operator's own URL
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(request, timeout=DISCOVERY_TIMEOUT_S) as response:  # noqa: S310
            body: Any = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SelfHostedError(f"cannot list models at {base_url}/models: {exc}") from exc
    entries = body.get("data") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise SelfHostedError(f"{base_url}/models did not answer an OpenAI model list")
    found = []
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]:
            length = entry.get("max_model_len") or entry.get("context_length")
            found.append(ServedModel(id=entry["id"], context_length=int(length) if length else None))
    return found


def public_model_slug(provider_slug: str, served_id: str) -> str:
    """The model id clients use: the served name lower-cased ("meta-llama/Llama-3.1-8B-Instruct" ->
    "meta-llama/llama-3.1-8b-instruct", the catalog's spelling), under the provider's slug when it has
    no author part. ':' is a variant separator in model ids (":free"), so it becomes '-'."""
    slug = _NOT_IN_SLUG.sub("-", served_id.strip().lower()).strip("-/")
    return slug if "/" in slug else f"{provider_slug}/{slug}"


def self_hosted_provider_add(
    *,
    slug: str,
    base_url: str,
    models: list[ServedModel],
    name: str = "",
    prompt_nanos_per_mtok: int = 0,
    completion_nanos_per_mtok: int = 0,
) -> list[AddedModel]:
    """Create or update the provider and one endpoint per served model; idempotent (re-run to re-price)."""
    added: list[AddedModel] = []
    with transaction.atomic():
        provider, _ = Provider.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name or slug,
                "adapter": Provider.Adapter.OPENAI,
                "base_url": base_url.rstrip("/"),
                "requires_api_key": False,  # a local server usually has none; <SLUG>_API_KEY is sent if set
                "is_enabled": True,
            },
        )
        for served in models:
            added.append(_endpoint_upsert(provider, served, prompt_nanos_per_mtok, completion_nanos_per_mtok))
        from proxy.catalog.services import catalog_changed

        transaction.on_commit(catalog_changed)
    return added


def _endpoint_upsert(provider: Provider, served: ServedModel, prompt: int, completion: int) -> AddedModel:
    slug = public_model_slug(provider.slug, served.id)
    context = served.context_length or DEFAULT_CONTEXT_LENGTH
    model, created = Model.objects.get_or_create(
        slug=slug,
        defaults={
            "canonical_slug": slug,
            "name": f"{served.id} ({provider.name})",
            "created": int(time.time()),
            "description": f"Served by {provider.name} at {provider.base_url}.",
            "context_length": context,
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "supported_parameters": SUPPORTED_PARAMETERS,
            "pricing": {"prompt": price_per_token_str(prompt), "completion": price_per_token_str(completion)},
        },
    )
    if not model.is_enabled or model.retired:
        model.is_enabled, model.retired = True, False
        model.save(update_fields=["is_enabled", "retired"])
    Endpoint.objects.update_or_create(
        model=model,
        tag=provider.slug,
        defaults={
            "provider": provider,
            "upstream_model": served.id,
            "context_length": context,
            "prompt_nanos_per_mtok": prompt,
            "completion_nanos_per_mtok": completion,
            "supported_parameters": SUPPORTED_PARAMETERS,
            "is_enabled": True,
            "retired": False,
        },
    )
    return AddedModel(slug=slug, upstream_model=served.id, created=created)
