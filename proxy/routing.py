"""Routing: which endpoints a request is tried on, and in what order (contract 10).

`route()` is pure: catalog, health and randomness come in as arguments, so it is tested
exhaustively without a network, a database or a clock. docs/routing.md describes the rules; in
short, for each requested model (primary first, then `models` fallbacks):

1. resolve the id and its variant suffix (`:free`, `:nitro`, `:floor`, `:thinking`, `:extended`,
   `:exacto`) or expand `openrouter/auto` (proxy/auto.py);
2. drop endpoints that violate a hard filter, remembering which filter removed the last ones so
   the 404 says why;
3. skip open circuits (the half-open probe excepted);
4. order: `order` entries first, then `sort`, else price-weighted load balancing (1/price^2) among
   stable endpoints with recently failing ones last; BYOK endpoints always first.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from proxy.auto import AUTO_ROUTERS, FREE_ROUTER, auto_models, free_models
from proxy.catalog.snapshot import Candidate, CatalogSnapshot, ModelInfo
from proxy.health import EndpointHealth, HealthView
from proxy.prefs import DEFAULT_PREFS, MaxPrice, ProviderPrefs, RoutingError, SortSpec

DYNAMIC_VARIANTS = frozenset({"nitro", "floor", "exacto", "thinking", "free", "extended"})
SERVICE_TIERS = frozenset({"priority", "flex"})
# Contract 2.4: compression is on by default for endpoints with at most this much context.
AUTO_COMPRESS_MAX_CONTEXT = 8_192
# Parameters that steer among a model's endpoints without ever removing the model (contract 2.3).
SOFT_PARAMS = frozenset({"response_format", "structured_outputs", "verbosity"})


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
    sticky_endpoint_id: int | None = None  # the endpoint holding this conversation's prompt cache (2.9)


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
    compress: bool = False  # some attempt needs middle-out


@dataclass(frozen=True, slots=True)
class _Target:
    """One requested model after variant resolution."""

    model_slug: str
    info: ModelInfo
    candidates: tuple[Candidate, ...]
    sort: SortSpec | None
    tiers: frozenset[str]  # service tiers this variant makes eligible
    reasoning_default: bool = False
    missing: str | None = None  # why the variant has no endpoints at all


@dataclass(frozen=True, slots=True)
class _Option:
    candidate: Candidate
    target: _Target
    compress_to: int | None


class _Rejected(Exception):
    def __init__(self, status: int, message: str, excluded_by: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.excluded_by = excluded_by


# --- matching provider names ---------------------------------------------------------------------


def tier_of(candidate: Candidate) -> str | None:
    if candidate.variant in SERVICE_TIERS:
        return candidate.variant
    suffix = candidate.tag.rsplit("/", 1)[-1] if "/" in candidate.tag else ""
    return suffix if suffix in SERVICE_TIERS else None


def names_tag(entry: str, candidate: Candidate) -> bool:
    return entry.lower() == candidate.tag.lower()


def matches(entry: str, candidate: Candidate, *, include_tiers: bool = False) -> bool:
    """A provider entry (slug, full tag, or display name) names this endpoint.

    A base slug covers all of the provider's endpoints except service-tier ones, which must be named
    by their full tag (contract 2.3) unless `include_tiers` (ignoring a provider ignores its tiers).
    """
    if names_tag(entry, candidate):
        return True
    lowered = entry.lower()
    if lowered in (candidate.provider_slug.lower(), candidate.provider_name.lower()):
        return include_tiers or tier_of(candidate) is None
    return False


def _any_match(entries: Iterable[str] | None, candidate: Candidate, *, include_tiers: bool = False) -> bool:
    return any(matches(e, candidate, include_tiers=include_tiers) for e in entries or ())


# --- resolving ids -------------------------------------------------------------------------------


def _resolve(model_id: str, catalog: CatalogSnapshot, prefs: ProviderPrefs) -> _Target:
    info = catalog.get(model_id)
    if info is not None:
        variant = model_id.rsplit(":", 1)[1] if ":" in model_id else ""
        # A router pseudo-model's catalog row is a placeholder, not an upstream; free endpoints serve
        # only the `:free` id (their rate limits and data policies are not what a paid id promises).
        cands = tuple(
            c for c in info.candidates if c.variant != "router" and (variant == "free" or c.variant != "free")
        )
        return _Target(model_id, info, cands, prefs.sort, frozenset(), variant == "thinking")
    base, _, variant = model_id.rpartition(":")
    base_info = catalog.get(base) if base else None
    if base_info is None or variant not in DYNAMIC_VARIANTS:
        raise RoutingError(400, f"{model_id} is not a valid model ID", {"error_type": "invalid_request"})
    by = prefs.sort.partition if prefs.sort else "model"
    cands = tuple(c for c in base_info.candidates if c.variant != "free")
    if variant == "free":
        free = tuple(c for c in base_info.candidates if c.variant == "free")
        return _Target(model_id, base_info, free, prefs.sort, frozenset(), missing=None if free else "free")
    if variant == "extended":  # only a catalog row "<base>:extended" has the longer context
        return _Target(model_id, base_info, (), prefs.sort, frozenset(), missing="extended")
    if variant == "thinking":
        return _Target(base, base_info, cands, prefs.sort, frozenset(), reasoning_default=True)
    sort_by = {"nitro": "throughput", "floor": "price", "exacto": "exacto"}[variant]
    tiers = {"nitro": frozenset({"priority"}), "floor": frozenset({"flex"})}.get(variant, frozenset())
    return _Target(base, base_info, cands, SortSpec(by=sort_by, partition=by), tiers)


def _targets(req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random) -> tuple[list[_Target], str | None]:
    if not req.models:
        raise RoutingError(400, "No models provided", {"error_type": "invalid_request"})
    targets: list[_Target] = []
    router: str | None = None
    for model_id in req.models:
        if model_id in AUTO_ROUTERS or model_id == FREE_ROUTER:
            router = model_id
            picked = free_models(req, catalog, rng) if model_id == FREE_ROUTER else auto_models(req, catalog)
            targets.extend(_resolve(slug, catalog, req.prefs) for slug in picked)
        else:
            targets.append(_resolve(model_id, catalog, req.prefs))
    return targets, router


# --- hard filters --------------------------------------------------------------------------------


def _no_endpoints(detail: str, excluded_by: str | None) -> _Rejected:
    return _Rejected(404, f"No endpoints found {detail}", excluded_by)


def _tier_allowed(target: _Target, prefs: ProviderPrefs, service_tier: str | None) -> Callable[[Candidate], bool]:
    tiers = set(target.tiers)
    if service_tier in ("priority", "fast"):
        tiers.add("priority")
    if service_tier == "flex":
        tiers.add("flex")

    def allowed(c: Candidate) -> bool:
        tier = tier_of(c)
        if tier is None or tier in tiers:
            return True
        return any(names_tag(e, c) for e in (*(prefs.order or ()), *(prefs.only or ())))

    return allowed


Rule = tuple[Callable[[Candidate], bool], str, str | None]  # keep-predicate, 404 detail, excluded_by


def _filters(target: _Target, req: RouteRequest) -> list[Rule]:
    """The hard filters this request switches on, in the order whose last casualty names the 404."""
    prefs, model = req.prefs, target.model_slug
    mp = prefs.max_price
    rules: list[Rule] = [(_tier_allowed(target, prefs, req.service_tier), f"for {model} in a service tier", None)]
    if prefs.only is not None:
        only = prefs.only
        rules.append((lambda c: _any_match(only, c), f"for {model} among the providers in provider.only", _ALLOWED))
    if prefs.ignore:
        ignore = prefs.ignore
        rules.append(
            (
                lambda c: not _any_match(ignore, c, include_tiers=True),
                f"for {model} once the providers in provider.ignore are excluded",
                _ALLOWED,
            )
        )
    if prefs.order is not None and not prefs.allow_fallbacks:
        order = prefs.order
        detail = f"for {model} among the providers in provider.order (allow_fallbacks is false)"
        rules.append((lambda c: _any_match(order, c), detail, _ALLOWED))
    if prefs.data_collection == "deny":
        rules.append(
            (
                lambda c: not (c.retains_prompts or c.trains_on_prompts),
                f"for {model} matching your data policy (data_collection: deny)",
                "data_policy:training",
            )
        )
    if prefs.zdr:
        rules.append((lambda c: c.zdr, f"for {model} matching your data policy (zdr: true)", "data_policy:zdr"))
    if prefs.quantizations is not None:
        quants = prefs.quantizations
        rules.append(
            (
                lambda c: (c.quantization or "unknown").lower() in quants,
                f"for {model} with the requested quantizations",
                "quantization",
            )
        )
    if not mp.is_empty():
        rules.append((lambda c: _within(c, mp), f"for {model} within your max_price", "max_price"))
    if "tools" in req.params:
        rules.append((lambda c: "tools" in c.supported_parameters, "that support tool use.", _PARAMS))
    if "tool_choice" in req.params:
        rules.append(
            (
                lambda c: "tool_choice" in c.supported_parameters,
                "that support the provided 'tool_choice' value.",
                _PARAMS,
            )
        )
    if prefs.require_parameters and req.params:
        params = req.params
        rules.append(
            (
                lambda c: params <= c.supported_parameters,
                f"for {model} that can handle the requested parameters",
                _PARAMS,
            )
        )
    if target.reasoning_default:
        rules.append((lambda c: "reasoning" in c.supported_parameters, f"for {model} that support reasoning", None))
    return rules


_ALLOWED = "allowed_providers"
_PARAMS = "require_parameters"


def _within(c: Candidate, mp: MaxPrice) -> bool:
    return (
        (mp.prompt is None or c.price.prompt <= mp.prompt)
        and (mp.completion is None or c.price.completion <= mp.completion)
        and (mp.request is None or c.price.request <= mp.request)
        and (mp.image is None or c.price.image <= mp.image)
    )


def _modalities_ok(info: ModelInfo, wanted: frozenset[str]) -> str | None:
    # PDFs work on every model (the file-parser plugin), so files never rule a model out.
    missing = sorted(wanted - set(info.input_modalities) - {"text", "file"})
    return missing[0] if missing and info.input_modalities else None


def _context_options(target: _Target, cands: list[Candidate], req: RouteRequest) -> list[_Option]:
    """Endpoints the prompt fits, else (with middle-out) endpoints it can be compressed into."""
    out_tokens = req.max_tokens or 0
    required = req.prompt_tokens + out_tokens

    def can_emit(c: Candidate) -> bool:
        return req.max_tokens is None or c.max_completion_tokens is None or req.max_tokens <= c.max_completion_tokens

    def compressible(c: Candidate) -> bool:
        enabled = req.middle_out if req.middle_out is not None else c.context_length <= AUTO_COMPRESS_MAX_CONTEXT
        return enabled and c.context_length - out_tokens > 0

    emitters = [c for c in cands if can_emit(c)]
    if not emitters:
        raise _Rejected(
            404,
            f"No endpoints found for {target.model_slug} that can produce {req.max_tokens} tokens",
            "context_length",
        )
    fitting = [_Option(c, target, None) for c in emitters if c.context_length <= 0 or required <= c.context_length]
    squeezable = [c for c in emitters if c.context_length > 0 and required > c.context_length and compressible(c)]
    # Contract 2.4: prefer endpoints whose context holds at least half the prompt, else the largest.
    halfway = [c for c in squeezable if 2 * c.context_length >= required]
    if not halfway and squeezable and not fitting:
        largest = max(c.context_length for c in squeezable)
        halfway = [c for c in squeezable if c.context_length == largest]
    options = fitting + [_Option(c, target, c.context_length - out_tokens) for c in halfway]
    if not options:
        biggest = max(c.context_length for c in emitters)
        raise _Rejected(
            400,
            f"This endpoint's maximum context length is {biggest} tokens. However, you requested about "
            f"{required} tokens ({req.prompt_tokens} of text input, {out_tokens} in the output). Please reduce "
            'the length of either one, or use the "middle-out" transform to compress your prompt automatically.',
            "context_length",
        )
    return options


def _eligible(target: _Target, req: RouteRequest) -> list[_Option]:
    if target.missing:
        raise _no_endpoints(f"for {target.model_slug}", None)
    missing_modality = _modalities_ok(target.info, req.input_modalities)
    if missing_modality:
        raise _no_endpoints(f"that support {missing_modality} input", None)
    cands = list(target.candidates)
    if not cands:
        raise _no_endpoints(f"for {target.model_slug}", None)
    for keep, detail, excluded_by in _filters(target, req):
        cands = [c for c in cands if keep(c)]
        if not cands:
            raise _no_endpoints(detail, excluded_by)
    soft = req.params & SOFT_PARAMS
    if soft and not req.prefs.require_parameters:
        preferred = [c for c in cands if soft <= c.supported_parameters]
        cands = preferred or cands
    if req.service_tier == "flex":
        flex = [c for c in cands if tier_of(c) == "flex"]
        cands = flex or cands  # no flex-capable endpoint at all: route normally (contract 10.4)
    return _context_options(target, cands, req)


# --- ordering ------------------------------------------------------------------------------------


def list_price(c: Candidate) -> int:
    """The per-token list price that load balancing weighs: prompt + completion, nanos per 1M tokens."""
    return c.price.prompt + c.price.completion


def price_weight(c: Candidate) -> float:
    # Free endpoints weigh as if they cost 1 nano per 1M tokens: always ahead of paid ones, and
    # evenly spread among themselves. (A float is fine: this is a probability, never money.)
    return 1.0 / float(max(list_price(c), 1)) ** 2


def weighted_shuffle(items: Sequence[_Option], rng: random.Random) -> list[_Option]:
    """Weighted sampling without replacement, each draw with probability proportional to 1/price^2.

    Efraimidis-Spirakis: sorting by u^(1/w) gives exactly the sequential-draw distribution in one
    pass. In log form (log(u)/w), so weights as small as 1e-30 neither underflow nor tie.
    """
    keyed = [(math.log(1.0 - rng.random()) / price_weight(o.candidate), index) for index, o in enumerate(items)]
    keyed.sort(reverse=True)
    return [items[index] for _, index in keyed]


def _stable_partition(items: list[_Option], first: Callable[[_Option], bool]) -> list[_Option]:
    return [o for o in items if first(o)] + [o for o in items if not first(o)]


def _sort_key(by: str, health: HealthView) -> Callable[[_Option], tuple[float, ...]]:
    inf = float("inf")

    def key(o: _Option) -> tuple[float, ...]:
        c, h = o.candidate, health.get(o.candidate.endpoint_id)
        outage = 1.0 if h.recent_outage else 0.0
        price = float(list_price(c))
        if by == "throughput":
            metric = -h.throughput_p50 if h.throughput_p50 is not None else inf
        elif by == "latency":
            latency = h.ttft_p50_ms if h.ttft_p50_ms is not None else h.latency_p50_ms
            metric = latency if latency is not None else inf
        elif by == "exacto":  # no tool-call quality data here: best uptime, then throughput
            metric = -(h.uptime_30m if h.uptime_30m is not None else 100.0)
            return (outage, metric, -(h.throughput_p50 or 0.0), price, float(c.endpoint_id))
        else:
            metric = price
        return (outage, metric, price, float(c.price.request), float(c.endpoint_id))

    return key


def _load_balanced(options: list[_Option], health: HealthView, rng: random.Random) -> list[_Option]:
    probes: list[_Option] = []
    stable: list[_Option] = []
    failing: list[_Option] = []
    for o in options:
        h = health.get(o.candidate.endpoint_id)
        (probes if h.half_open_probe else failing if h.recent_outage else stable).append(o)
    # The probe goes first so a recovered endpoint gets its one chance promptly; a failed probe
    # still falls back to the rest of the chain.
    failing.sort(key=lambda o: (list_price(o.candidate), o.candidate.endpoint_id))
    return probes + weighted_shuffle(stable, rng) + failing


def _meets_preferences(o: _Option, prefs: ProviderPrefs, health: HealthView) -> bool:
    h = health.get(o.candidate.endpoint_id)
    min_tps = prefs.preferred_min_throughput.get("p50")
    max_latency_s = prefs.preferred_max_latency.get("p50")
    if min_tps is not None and h.throughput_p50 is not None and h.throughput_p50 < min_tps:
        return False
    latency = h.ttft_p50_ms if h.ttft_p50_ms is not None else h.latency_p50_ms
    return not (max_latency_s is not None and latency is not None and latency > max_latency_s * 1000)


def _order(
    options: list[_Option], req: RouteRequest, sort: SortSpec | None, health: HealthView, rng: random.Random
) -> list[_Option]:
    prefs = req.prefs
    listed: list[_Option] = []
    taken: set[int] = set()  # identities: comparing options field by field would walk the catalog
    for entry in prefs.order or ():
        named = [o for o in options if id(o) not in taken and matches(entry, o.candidate)]
        listed.extend(sorted(named, key=_sort_key("price", health)))
        taken.update(id(o) for o in named)
    rest = [o for o in options if id(o) not in taken]
    if prefs.order is not None and not prefs.allow_fallbacks:
        rest = []
    elif sort is not None:
        rest.sort(key=_sort_key(sort.by, health))
    else:
        rest = _load_balanced(rest, health, rng)
    if prefs.preferred_min_throughput or prefs.preferred_max_latency:
        rest = _stable_partition(rest, lambda o: _meets_preferences(o, prefs, health))
    ordered = listed + rest
    if prefs.order is None:
        ordered = _stable_partition(ordered, lambda o: o.compress_to is None)
    if req.service_tier in ("priority", "fast"):
        ordered = _stable_partition(ordered, lambda o: tier_of(o.candidate) == "priority")
    if req.sticky_endpoint_id is not None and prefs.order is None:
        # Sticky routing (contract 2.9): the cache-holding endpoint first, unless `order` pins providers.
        ordered = _stable_partition(ordered, lambda o: o.candidate.endpoint_id == req.sticky_endpoint_id)
    # BYOK first, whatever the order (contract 10.2): the organization pays its provider directly.
    ordered = _stable_partition(ordered, lambda o: o.candidate.is_byok)
    if prefs.order is None and not prefs.allow_fallbacks:
        ordered = ordered[:1]  # only the primary provider
    return ordered


# --- the plan ------------------------------------------------------------------------------------


def _usable(options: list[_Option], health: HealthView) -> list[_Option]:
    def open_(o: _Option) -> bool:
        h: EndpointHealth = health.get(o.candidate.endpoint_id)
        return h.circuit_open and not h.half_open_probe

    return [o for o in options if not open_(o)]


def _retry_after(options: list[_Option], health: HealthView) -> float | None:
    waits = [health.get(o.candidate.endpoint_id).retry_after_s for o in options]
    known = [w for w in waits if w is not None]
    return min(known) if known else None


def _byok(option: _Option, byok: frozenset[str]) -> _Option:
    if option.candidate.provider_slug in byok:
        return replace(option, candidate=replace(option.candidate, is_byok=True))
    return option


def route(req: RouteRequest, catalog: CatalogSnapshot, health: HealthView, rng: random.Random) -> RoutePlan:
    """The ordered attempts for a request. Pure; raises `RoutingError` (400/404/503), never anything else."""
    targets, router = _targets(req, catalog, rng)
    per_target: list[tuple[_Target, list[_Option]]] = []
    first_rejection: _Rejected | None = None
    all_open: list[_Option] = []
    for target in targets:
        try:
            options = _eligible(target, req)
        except _Rejected as rejection:
            first_rejection = first_rejection or rejection
            continue
        usable = _usable(options, health)
        if not usable:
            all_open.extend(options)
            continue
        per_target.append((target, [_byok(o, req.byok_providers) for o in usable]))
    if not per_target:
        raise _failure(first_rejection, all_open, health)
    pooled_sort = next((t.sort for t, _ in per_target if t.sort and t.sort.partition == "none"), None)
    if pooled_sort is not None:
        ordered = _order([o for _, opts in per_target for o in opts], req, pooled_sort, health, rng)
    else:
        ordered = [o for target, options in per_target for o in _order(options, req, target.sort, health, rng)]
    attempts: list[Attempt] = []
    seen: set[int] = set()
    for o in ordered:
        if o.candidate.endpoint_id in seen:
            continue
        seen.add(o.candidate.endpoint_id)
        attempts.append(Attempt(o.candidate, o.target.model_slug, o.target.reasoning_default, o.compress_to))
    return RoutePlan(tuple(attempts), router, any(a.compress_to is not None for a in attempts))


def _failure(rejection: _Rejected | None, all_open: list[_Option], health: HealthView) -> RoutingError:
    if all_open:
        retry = _retry_after(all_open, health)
        metadata: dict[str, object] = {"error_type": "provider_overloaded"}
        if retry is not None:
            metadata["retry_after"] = retry
        return RoutingError(
            503,
            "No available provider: every endpoint that matches this request is temporarily unavailable "
            "(circuit open after repeated failures). Retry shortly.",
            metadata,
        )
    assert rejection is not None  # targets is never empty, so something was rejected
    error_type = "context_length_exceeded" if rejection.status == 400 else "not_found"
    meta: dict[str, object] = {"error_type": error_type}
    if rejection.excluded_by:
        meta["excluded_by"] = [rejection.excluded_by]
    return RoutingError(rejection.status, rejection.message, meta)
