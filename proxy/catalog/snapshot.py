"""The catalog as the hot path sees it: immutable, in process memory, rebuilt when it changes.

Routing and the gateway never query the database per request; they read a `CatalogSnapshot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from billing.pricing import PriceCard


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


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    models: Mapping[str, ModelInfo] = field(default_factory=dict)
    version: str = ""

    def get(self, slug: str) -> ModelInfo | None:
        return self.models.get(slug)
