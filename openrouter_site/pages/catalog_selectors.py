"""Reads for the public catalog pages: which providers serve which model (for the provider filter)."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.models import Endpoint


@dataclass(frozen=True)
class ProviderIndex:
    providers: list[tuple[str, str]]  # (slug, name), by name
    by_model: dict[str, frozenset[str]]  # model slug -> provider slugs with an enabled endpoint


def catalog_provider_index() -> ProviderIndex:
    rows = Endpoint.objects.filter(is_enabled=True, provider__is_enabled=True, model__is_enabled=True).values_list(
        "model__slug", "provider__slug", "provider__name"
    )
    names: dict[str, str] = {}
    by_model: dict[str, set[str]] = {}
    for model_slug, provider_slug, provider_name in rows:
        names[provider_slug] = provider_name
        by_model.setdefault(model_slug, set()).add(provider_slug)
    return ProviderIndex(
        providers=sorted(names.items(), key=lambda item: item[1].lower()),
        by_model={slug: frozenset(found) for slug, found in by_model.items()},
    )
