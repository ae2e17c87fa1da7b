"""The catalog as the hot path sees it: immutable, in process memory, rebuilt when it changes.

Routing and the gateway never query the database per request; they read a `CatalogSnapshot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from billing.pricing import PriceCard
from common import redis as common_redis


@dataclass(frozen=True, slots=True)
class Candidate:
    """One endpoint (a model at a provider) that a request could be sent to."""

    endpoint_id: int
    model_slug: str  # the routable model id this endpoint serves, e.g. "openai/gpt-4o" or "x/y:free"
    provider_slug: str  # e.g. "deepinfra"
    provider_name: str  # display name, e.g. "DeepInfra"
    tag: str  # routing slug, e.g. "deepinfra" or "deepinfra/turbo"
    adapter: str  # "openai" | "anthropic" | "gemini"
    base_url: str
    upstream_model: str
    variant: str  # "standard" | "free" | ...
    quantization: str | None
    context_length: int
    max_completion_tokens: int | None
    price: PriceCard
    supported_parameters: frozenset[str]
    retains_prompts: bool
    trains_on_prompts: bool
    zdr: bool
    supports_cancellation: bool
    connect_timeout_ms: int
    first_byte_timeout_ms: int
    idle_timeout_ms: int
    is_byok: bool = False  # set per request when the organization's own key serves this endpoint
    # Published figures (catalog or operator): routing's fallback while this gateway has no samples.
    published_uptime_bp: int | None = None  # basis points: 9950 = 99.50% of requests succeeded
    published_latency_ms: int | None = None  # median time to first token
    published_throughput_tps: int | None = None  # median output tokens per second


@dataclass(frozen=True, slots=True)
class ModelInfo:
    slug: str
    name: str
    context_length: int
    supported_parameters: frozenset[str]
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    reasoning: Mapping[str, object] | None
    candidates: tuple[Candidate, ...]
    # Published quality (the auto router weighs it): intelligence / coding / agentic indices (0-100,
    # Artificial Analysis) and arena_rank / arena_coding_rank (LMArena, 1 = best); absent = unknown.
    quality: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    models: Mapping[str, ModelInfo] = field(default_factory=dict)
    version: str = ""
    # The platform's own upstream keys by provider slug, from <SLUG>_API_KEY (never in the database).
    platform_keys: Mapping[str, str] = field(default_factory=dict)
    # Providers the platform can call: a key is set, or <SLUG>_BASE_URL points at a (keyless) local host.
    configured: frozenset[str] = frozenset()

    def get(self, slug: str) -> ModelInfo | None:
        return self.models.get(slug)


VERSION_KEY = "catalog:version"
_local_version = 0


def catalog_from_db() -> CatalogSnapshot:
    """Build the snapshot from the database. Sync; runs at startup and when the version changes."""
    from proxy.credentials import provider_env
    from proxy.models import Endpoint, Model

    by_model: dict[int, list[Candidate]] = {}
    platform_keys: dict[str, str] = {}
    configured: set[str] = set()
    endpoints = Endpoint.objects.filter(
        is_enabled=True, provider__is_enabled=True, model__is_enabled=True
    ).select_related("provider")
    for ep in endpoints:
        prov = ep.provider
        api_key, base_override = provider_env(prov.slug)
        if api_key:
            platform_keys[prov.slug] = api_key
        if api_key or base_override or not prov.requires_api_key:
            configured.add(prov.slug)
        by_model.setdefault(ep.model_id, []).append(
            Candidate(
                endpoint_id=ep.pk,
                model_slug="",  # filled below
                provider_slug=prov.slug,
                provider_name=prov.name,
                tag=ep.tag,
                adapter=prov.adapter,
                base_url=(base_override or prov.base_url).rstrip("/"),
                upstream_model=ep.upstream_model,
                variant=ep.variant,
                quantization=ep.quantization,
                context_length=ep.context_length,
                max_completion_tokens=ep.max_completion_tokens,
                price=PriceCard(
                    prompt=ep.prompt_nanos_per_mtok,
                    completion=ep.completion_nanos_per_mtok,
                    cache_read=ep.cache_read_nanos_per_mtok,
                    cache_write=ep.cache_write_nanos_per_mtok,
                    reasoning=ep.reasoning_nanos_per_mtok,
                    request=ep.request_nanos,
                    image=ep.image_nanos,
                ),
                supported_parameters=frozenset(ep.supported_parameters or ()),
                retains_prompts=prov.retains_prompts,
                trains_on_prompts=prov.trains_on_prompts,
                zdr=prov.zdr,
                supports_cancellation=prov.supports_cancellation,
                connect_timeout_ms=prov.connect_timeout_ms,
                first_byte_timeout_ms=prov.first_byte_timeout_ms,
                idle_timeout_ms=prov.idle_timeout_ms,
                published_uptime_bp=None if ep.published_uptime is None else int(ep.published_uptime * 100),
                published_latency_ms=ep.published_latency_ms,
                published_throughput_tps=ep.published_throughput_tps,
            )
        )
    models: dict[str, ModelInfo] = {}
    for m in Model.objects.filter(is_enabled=True):
        candidates = tuple(_with_model(c, m.slug) for c in by_model.get(m.pk, ()))
        models[m.slug] = ModelInfo(
            slug=m.slug,
            name=m.name,
            context_length=m.context_length,
            supported_parameters=frozenset(m.supported_parameters or ()),
            input_modalities=tuple(m.input_modalities or ()),
            output_modalities=tuple(m.output_modalities or ()),
            reasoning=m.reasoning,
            candidates=candidates,
            quality=quality_from_extra(m.extra or {}),
        )
    return CatalogSnapshot(
        models=models,
        version=str(catalog_version()),
        platform_keys=platform_keys,
        configured=frozenset(configured),
    )


def quality_from_extra(extra: Mapping[str, object]) -> dict[str, float]:
    """The `_quality` figures proxy/catalog/build.py puts in a record (kept in Model.extra)."""
    raw = extra.get("_quality")
    if not isinstance(raw, Mapping):
        return {}
    return {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _with_model(c: Candidate, slug: str) -> Candidate:
    from dataclasses import replace

    return replace(c, model_slug=slug)


def catalog_version() -> int:
    """The current catalog version (bumped after every catalog change, seen by every process)."""
    if not common_redis.configured():
        return _local_version
    return int(common_redis.sync_redis().get(VERSION_KEY) or 0)


async def catalog_version_async() -> int:
    """The same read for the gateway's event loop (one GET on the shared async pool)."""
    if not common_redis.configured():
        return _local_version
    return int(await common_redis.async_redis().get(VERSION_KEY) or 0)


def catalog_bump_version() -> None:
    """Tell every gateway process that the catalog changed (call after the change is committed)."""
    global _local_version
    _local_version += 1
    if common_redis.configured():
        common_redis.sync_redis().incr(VERSION_KEY)
