"""The values routing passes between its steps: the request, one requested model, one option, the plan."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.catalog.snapshot import Candidate, ModelInfo
from proxy.routing.prefs import DEFAULT_PREFS, ProviderPrefs, SortSpec


@dataclass(frozen=True, slots=True)
class RouteRequest:
    models: tuple[str, ...]  # requested ids in fallback order: `model` first, then `models`
    prefs: ProviderPrefs = DEFAULT_PREFS
    prompt_tokens: int = 0  # estimate (proxy/tokens.py)
    max_tokens: int | None = None
    params: frozenset[str] = frozenset()  # in the supported_parameters vocabulary
    byok_providers: frozenset[str] = frozenset()  # provider slugs the organization has its own key for
    input_modalities: frozenset[str] = frozenset()  # non-text inputs the prompt carries: "image", "audio", ...
    middle_out: bool | None = None  # True: asked for; False: disabled; None: default (on for <=8k endpoints)
    service_tier: str | None = None  # "flex" | "priority" | "fast" | ...
    auto_allowed: tuple[str, ...] = ()  # auto-router plugin `allowed_models` (wildcards)
    auto_excluded: tuple[str, ...] = ()  # auto-router plugin `excluded_models`
    code_in_prompt: bool = False  # a signal for the auto router's weights (auto.code_in_prompt)
    output_modalities: frozenset[str] = frozenset()  # the request's `modalities`; empty: text


@dataclass(frozen=True, slots=True)
class Attempt:
    candidate: Candidate
    model_slug: str  # the id to report in the response and on the bill
    reasoning_default: bool = False  # :thinking turns reasoning on unless the request says otherwise
    compress_to: int | None = None  # middle-out this prompt to at most this many tokens first


@dataclass(frozen=True, slots=True)
class RoutePlan:
    attempts: tuple[Attempt, ...]
    router: str | None = None  # "openrouter/auto" when the auto router chose the models


@dataclass(frozen=True, slots=True)
class Target:
    """One requested model after variant resolution."""

    model_slug: str
    info: ModelInfo
    candidates: tuple[Candidate, ...]
    sort: SortSpec | None
    tiers: frozenset[str]  # service tiers this variant makes eligible
    reasoning_default: bool = False
    missing: str | None = None  # why the variant has no endpoints at all


@dataclass(frozen=True, slots=True)
class Option:
    """An endpoint a target may be sent to, and how far its prompt must be compressed to fit."""

    candidate: Candidate
    target: Target
    compress_to: int | None


class Rejected(Exception):
    """Why one target has no eligible endpoint; the plan fails with the primary model's reason."""

    def __init__(self, status: int, message: str, excluded_by: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.excluded_by = excluded_by
