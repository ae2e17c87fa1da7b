"""Small builders for catalog snapshots: routing is pure, so tests build the catalog in memory."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from billing.pricing import PriceCard
from proxy.catalog.snapshot import Candidate, CatalogSnapshot, ModelInfo

_ids = itertools.count(1)
USD_PER_MTOK = 1_000_000_000  # nanos per 1M tokens for $1 per million tokens

ALL_PARAMS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "tools",
        "tool_choice",
        "response_format",
        "structured_outputs",
        "reasoning",
        "stop",
        "seed",
        "verbosity",
    }
)


def cand(
    provider: str,
    *,
    model: str = "acme/model",
    tag: str | None = None,
    name: str | None = None,
    prompt: int = USD_PER_MTOK,
    completion: int = USD_PER_MTOK,
    request: int = 0,
    image: int = 0,
    context: int = 128_000,
    max_completion: int | None = None,
    params: frozenset[str] = ALL_PARAMS,
    retains: bool = False,
    trains: bool = False,
    zdr: bool = False,
    quantization: str | None = "fp16",
    variant: str = "standard",
    endpoint_id: int | None = None,
) -> Candidate:
    return Candidate(
        endpoint_id=endpoint_id if endpoint_id is not None else next(_ids),
        model_slug=model,
        provider_slug=provider,
        provider_name=name or provider.title(),
        tag=tag or provider,
        adapter="openai",
        base_url=f"http://127.0.0.1:9/{provider}",
        upstream_model=model,
        variant=variant,
        quantization=quantization,
        context_length=context,
        max_completion_tokens=max_completion,
        price=PriceCard(prompt=prompt, completion=completion, request=request, image=image),
        supported_parameters=params,
        retains_prompts=retains,
        trains_on_prompts=trains,
        zdr=zdr,
        supports_cancellation=True,
        connect_timeout_ms=1_000,
        first_byte_timeout_ms=10_000,
        idle_timeout_ms=10_000,
    )


def model(slug: str, *candidates: Candidate, context: int = 128_000, **kw: Any) -> ModelInfo:
    cands = tuple(replace(c, model_slug=slug) for c in candidates)
    return ModelInfo(
        slug=slug,
        name=slug,
        context_length=context,
        supported_parameters=frozenset().union(*(c.supported_parameters for c in cands)) if cands else frozenset(),
        input_modalities=kw.get("input_modalities", ("text",)),
        output_modalities=kw.get("output_modalities", ("text",)),
        reasoning=kw.get("reasoning"),
        candidates=cands,
    )


def catalog(*models: ModelInfo, configured: frozenset[str] | None = None) -> CatalogSnapshot:
    """A snapshot whose providers all have platform credentials, unless `configured` says which do."""
    if configured is None:
        configured = frozenset(c.provider_slug for m in models for c in m.candidates)
    return CatalogSnapshot(models={m.slug: m for m in models}, version="test", configured=configured)
