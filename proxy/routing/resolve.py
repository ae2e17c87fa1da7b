"""The one resolve step: which models and endpoints a request may try, before any health is known.

Requested ids become targets (variant suffixes resolved, `openrouter/auto` and `openrouter/free`
expanded to the models they pick), each target keeps the endpoints that pass the hard filters and
the credential filter. The gateway reads health for exactly `Resolved.endpoint_ids`, then
`order.plan()` skips open circuits and orders what is left. Pure: no I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings

from proxy.catalog.snapshot import CatalogSnapshot
from proxy.routing.auto import (
    AUTO_ROUTERS,
    ROUTERS,
    QualityTable,
    option_serves,
    policy_ranked,
    quality_table,
    router_models,
)
from proxy.routing.filters import eligible, with_credentials
from proxy.routing.prefs import ProviderPrefs, RoutingError, SortSpec
from proxy.routing.types import Option, Rejected, RouteRequest, Target

DYNAMIC_VARIANTS = frozenset({"nitro", "floor", "exacto", "thinking", "free", "extended"})


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a request may try: per target (in fallback order) its eligible, reachable endpoints."""

    req: RouteRequest
    router: str | None  # the router id (`openrouter/auto`, ...) when one chose the targets
    choices: tuple[tuple[Target, tuple[Option, ...]], ...]
    rejection: Rejected | None  # the first reason a target had no eligible endpoint
    uncredentialed: frozenset[str]  # providers of eligible endpoints nobody holds a key for
    # The auto router's shortlist: plan() re-scores it with health (auto.rerank) against this table.
    rerank: QualityTable | None = None

    @property
    def endpoint_ids(self) -> list[int]:
        """The endpoints whose health decides the plan: one batched read, nothing else."""
        return list(dict.fromkeys(o.candidate.endpoint_id for _, options in self.choices for o in options))


def target_for(model_id: str, catalog: CatalogSnapshot, prefs: ProviderPrefs) -> Target:
    """One model id (with its variant suffix, if any) as the endpoints it may use."""
    info = catalog.get(model_id)
    if info is not None:
        variant = model_id.rsplit(":", 1)[1] if ":" in model_id else ""
        # A router pseudo-model's catalog row is a placeholder, not an upstream; free endpoints serve
        # only the `:free` id (their rate limits and data policies are not what a paid id promises).
        cands = tuple(
            c for c in info.candidates if c.variant != "router" and (variant == "free" or c.variant != "free")
        )
        return Target(model_id, info, cands, prefs.sort, frozenset(), variant == "thinking")
    base, _, variant = model_id.rpartition(":")
    base_info = catalog.get(base) if base else None
    if base_info is None or variant not in DYNAMIC_VARIANTS:
        raise RoutingError(400, f"{model_id} is not a valid model ID", {"error_type": "invalid_request"})
    by = prefs.sort.partition if prefs.sort else "model"
    cands = tuple(c for c in base_info.candidates if c.variant != "free")
    if variant == "free":
        free = tuple(c for c in base_info.candidates if c.variant == "free")
        return Target(model_id, base_info, free, prefs.sort, frozenset(), missing=None if free else "free")
    if variant == "extended":  # only a catalog row "<base>:extended" has the longer context
        return Target(model_id, base_info, (), prefs.sort, frozenset(), missing="extended")
    if variant == "thinking":
        return Target(base, base_info, cands, prefs.sort, frozenset(), reasoning_default=True)
    sort_by = {"nitro": "throughput", "floor": "price", "exacto": "exacto"}[variant]
    tiers = {"nitro": frozenset({"priority"}), "floor": frozenset({"flex"})}.get(variant, frozenset())
    return Target(base, base_info, cands, SortSpec(by=sort_by, partition=by), tiers)


def _targets(
    req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random
) -> tuple[list[Target], str | None, set[str]]:
    if not req.models:
        raise RoutingError(400, "No models provided", {"error_type": "invalid_request"})
    targets: list[Target] = []
    router: str | None = None
    routed: set[str] = set()  # model ids a router chose (their endpoints must honour endpoint_serves)
    for model_id in req.models:
        if model_id in ROUTERS:
            router = model_id
            picked = router_models(model_id, req, catalog, rng)
            if len(req.models) > 1:  # among other ids plan() does not re-score: the fallbacks only
                picked = picked[: settings.AUTO_ROUTER_FALLBACKS]
            routed.update(picked)
            targets.extend(target_for(slug, catalog, req.prefs) for slug in picked)
        else:
            targets.append(target_for(model_id, catalog, req.prefs))
    return targets, router, routed


def resolve(req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random) -> Resolved:
    """Targets and their endpoints. Raises `RoutingError` for bad input (400) or a router with no pick (404)."""
    targets, router, routed = _targets(req, catalog, rng)
    choices: list[tuple[Target, tuple[Option, ...]]] = []
    rejection: Rejected | None = None
    uncredentialed: set[str] = set()
    for target in targets:
        try:
            options = eligible(target, req)
        except Rejected as rejected:
            rejection = rejection or rejected
            continue
        usable = with_credentials(options, req, catalog)
        if target.model_slug in routed:
            usable = [o for o in usable if option_serves(o, req)]
        if usable:
            choices.append((target, tuple(usable)))
        else:
            uncredentialed.update(o.candidate.provider_slug for o in options)
    rerank = None
    if router in AUTO_ROUTERS and policy_ranked(req) and req.models == (router,):
        rerank = quality_table(catalog)
    return Resolved(req, router, tuple(choices), rejection, frozenset(uncredentialed), rerank)
