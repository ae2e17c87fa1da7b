"""`openrouter/auto`: pick models for a request by a documented, configurable rule (contract 5.4).

OpenRouter ranks models by a task classifier and community spend; we have neither, so the rule is
explicit and predictable:

1. the ranking is the setting AUTO_ROUTER_MODELS (model ids, best first); when it is empty, every
   catalog model (no variants, no `openrouter/*`) from cheapest to dearest by its cheapest
   endpoint's prompt + completion price (OpenRouter's default cost tier is "low");
2. the auto-router plugin's `allowed_models` / `excluded_models` wildcards (`anthropic/*`) narrow it;
3. a model qualifies when it can serve the request: an endpoint someone holds a key for, tools if
   the request has tools, every input modality the prompt carries (images, audio), and enough
   context for prompt + max_tokens;
4. the first AUTO_ROUTER_FALLBACKS qualifying models become primary + fallbacks.

Nothing qualifying is a 404 "No models match your request and model restrictions".
`openrouter/auto-beta` follows the same rule. `openrouter/free` picks, at random, up to
AUTO_ROUTER_FALLBACKS `:free` models that qualify by the same test (contract 5.4).

Health is not part of the choice: the picked models' endpoints go through the same health read and
circuit breaker as any requested model's (proxy/routing/order.py), so a model whose endpoints are
all open is skipped and the next pick serves.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from fnmatch import fnmatchcase

from django.conf import settings

from proxy.catalog.snapshot import CatalogSnapshot, ModelInfo
from proxy.routing.filters import reachable
from proxy.routing.prefs import RoutingError
from proxy.routing.types import RouteRequest

AUTO_ROUTER = "openrouter/auto"
FREE_ROUTER = "openrouter/free"
# The auto-beta router takes the same plugin options; we apply the same rule to it.
AUTO_ROUTERS = frozenset({AUTO_ROUTER, "openrouter/auto-beta"})
ROUTERS = AUTO_ROUTERS | {FREE_ROUTER}


def _cheapest(info: ModelInfo) -> int:
    return min((c.price.prompt + c.price.completion for c in info.candidates), default=0)


def default_ranking(catalog: CatalogSnapshot) -> list[str]:
    eligible = [
        info
        for slug, info in catalog.models.items()
        if ":" not in slug and not slug.startswith("openrouter/") and _chat_model(info)
    ]
    eligible.sort(key=lambda info: (_cheapest(info), info.slug))
    return [info.slug for info in eligible]


def _chat_model(info: ModelInfo) -> bool:
    """Text in, text out: the catalog also lists embedding, speech, image and rerank models."""
    if not info.input_modalities and not info.output_modalities:
        return True
    return "text" in info.input_modalities and "text" in info.output_modalities


def _serves(info: ModelInfo, req: RouteRequest, catalog: CatalogSnapshot) -> bool:
    candidates = [c for c in info.candidates if reachable(c, req, catalog)]
    if not candidates or not _chat_model(info):
        return False
    if "tools" in req.params and not any("tools" in c.supported_parameters for c in candidates):
        return False
    wanted = req.input_modalities - {"text", "file"}
    if wanted and not wanted <= set(info.input_modalities):
        return False
    context = max([info.context_length, *(c.context_length for c in candidates)])
    return context <= 0 or req.prompt_tokens + (req.max_tokens or 0) <= context


def _allowed(slug: str, req: RouteRequest) -> bool:
    if req.auto_allowed and not any(fnmatchcase(slug, pattern) for pattern in req.auto_allowed):
        return False
    return not any(fnmatchcase(slug, pattern) for pattern in req.auto_excluded)


def auto_models(req: RouteRequest, catalog: CatalogSnapshot, ranking: Sequence[str] | None = None) -> tuple[str, ...]:
    """The model ids `openrouter/auto` routes this request to, best first."""
    ranked = list(ranking) if ranking is not None else (list(settings.AUTO_ROUTER_MODELS) or default_ranking(catalog))
    picked: list[str] = []
    for slug in ranked:
        info = catalog.get(slug)
        if info is not None and slug not in picked and _allowed(slug, req) and _serves(info, req, catalog):
            picked.append(slug)
        if len(picked) >= settings.AUTO_ROUTER_FALLBACKS:
            break
    if not picked:
        raise RoutingError(404, "No models match your request and model restrictions", {"error_type": "not_found"})
    return tuple(picked)


def free_models(req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random) -> tuple[str, ...]:
    """`openrouter/free`: free (`:free`) chat models that can serve the request, in random order."""
    fitting = sorted(
        slug
        for slug, info in catalog.models.items()
        if slug.endswith(":free") and _allowed(slug, req) and _serves(info, req, catalog)
    )
    rng.shuffle(fitting)
    if not fitting:
        raise RoutingError(404, "No free models match your request", {"error_type": "not_found"})
    return tuple(fitting[: settings.AUTO_ROUTER_FALLBACKS])


def router_models(model_id: str, req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random) -> tuple[str, ...]:
    """The models a router id stands for (`model_id` must be one of ROUTERS)."""
    return free_models(req, catalog, rng) if model_id == FREE_ROUTER else auto_models(req, catalog)
