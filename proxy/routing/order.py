"""Ordering: the resolved endpoints, minus open circuits, in the order they are tried (contract 10.2).

`order` entries first, then `sort`, else price-weighted load balancing (1/price^2) among stable
endpoints with recently failing ones last; BYOK endpoints always first. Pure: health and randomness
come in as arguments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from proxy.catalog.snapshot import Candidate
from proxy.credentials import provider_env_prefix
from proxy.health import EndpointHealth, HealthView
from proxy.routing.auto import rerank
from proxy.routing.filters import matches, tier_of
from proxy.routing.prefs import RoutingError, SortSpec
from proxy.routing.resolve import Resolved
from proxy.routing.types import Attempt, Option, Rejected, RoutePlan, RouteRequest, Target


def list_price(c: Candidate) -> int:
    """The per-token list price that load balancing weighs: prompt + completion, nanos per 1M tokens."""
    return c.price.prompt + c.price.completion


def price_weight(c: Candidate) -> float:
    # Free endpoints weigh as if they cost 1 nano per 1M tokens: always ahead of paid ones, and
    # evenly spread among themselves. (A float is fine: this is a probability, never money.)
    return 1.0 / float(max(list_price(c), 1)) ** 2


def weighted_shuffle(items: Sequence[Option], rng: random.Random) -> list[Option]:
    """Weighted sampling without replacement, each draw with probability proportional to 1/price^2.

    Efraimidis-Spirakis: sorting by u^(1/w) gives exactly the sequential-draw distribution in one
    pass. In log form (log(u)/w), so weights as small as 1e-30 neither underflow nor tie.
    """
    keyed = [(math.log(1.0 - rng.random()) / price_weight(o.candidate), index) for index, o in enumerate(items)]
    keyed.sort(reverse=True)
    return [items[index] for _, index in keyed]


def _stable_partition(items: list[Option], first: Callable[[Option], bool]) -> list[Option]:
    return [o for o in items if first(o)] + [o for o in items if not first(o)]


# Seeded statistics (docs/routing.md): an endpoint this gateway has no samples for is judged by its
# published figures; one published below this uptime goes behind its equal-price peers.
POOR_UPTIME_BP = 9_500


def _measured(h: EndpointHealth) -> bool:
    return h.latency_p50_ms is not None or h.ttft_p50_ms is not None or h.throughput_p50 is not None


def effective_throughput(c: Candidate, h: EndpointHealth) -> float | None:
    """Measured p50 tokens/s, else the published figure, else unknown."""
    if h.throughput_p50 is not None:
        return h.throughput_p50
    return None if c.published_throughput_tps is None else float(c.published_throughput_tps)


def effective_latency(c: Candidate, h: EndpointHealth) -> float | None:
    """Measured p50 time to first token (else total latency), else the published figure, in ms."""
    measured = h.ttft_p50_ms if h.ttft_p50_ms is not None else h.latency_p50_ms
    if measured is not None:
        return measured
    return None if c.published_latency_ms is None else float(c.published_latency_ms)


def poor_uptime(c: Candidate, h: EndpointHealth) -> bool:
    """Published uptime below POOR_UPTIME_BP and nothing measured here yet (then outages judge it)."""
    bp = c.published_uptime_bp
    return bp is not None and bp < POOR_UPTIME_BP and not _measured(h)


def _sort_key(by: str, health: HealthView) -> Callable[[Option], tuple[float, ...]]:
    inf = float("inf")

    def key(o: Option) -> tuple[float, ...]:
        c, h = o.candidate, health.get(o.candidate.endpoint_id)
        outage = 1.0 if h.recent_outage else 0.0
        price = float(list_price(c))
        uptime = 1.0 if poor_uptime(c, h) else 0.0  # a tie-breaker after price, never before it
        if by == "throughput":
            tps = effective_throughput(c, h)
            metric = -tps if tps is not None else inf
        elif by == "latency":
            latency = effective_latency(c, h)
            metric = latency if latency is not None else inf
        elif by == "exacto":  # measured tool-call quality first, then throughput, then price
            tps = effective_throughput(c, h) or 0.0
            return (outage, tool_error_estimate(h), -tps, price, uptime, float(c.endpoint_id))
        else:
            metric = price
        return (outage, metric, price, float(c.price.request), uptime, float(c.endpoint_id))

    return key


def _poor_uptime_last_among_equal_price(items: list[Option], health: HealthView) -> list[Option]:
    """Within each group of equal list price, endpoints with a poor published uptime take the group's
    last positions; other groups keep the positions load balancing gave them."""
    poor = {id(o) for o in items if poor_uptime(o.candidate, health.get(o.candidate.endpoint_id))}
    if not poor:
        return items  # the common case: nothing to move
    groups: dict[int, list[Option]] = {}
    for o in items:
        groups.setdefault(list_price(o.candidate), []).append(o)
    refill = {price: iter(sorted(g, key=lambda o: id(o) in poor)) for price, g in groups.items()}
    return [next(refill[list_price(o.candidate)]) for o in items]


# An endpoint without enough tool-call samples is assumed to fail this share of them: behind endpoints
# measured near-perfect, ahead of ones measured worse (docs/routing.md "Tool-call quality").
UNMEASURED_TOOL_ERROR_RATE = 0.05
# Requests with tools try endpoints measured at or above this bad tool-call share last.
BAD_TOOL_ERROR_RATE = 0.2


def tool_error_estimate(h: EndpointHealth) -> float:
    return h.tool_error_rate if h.tool_error_rate is not None else UNMEASURED_TOOL_ERROR_RATE


def _load_balanced(options: list[Option], health: HealthView, rng: random.Random) -> list[Option]:
    probes: list[Option] = []
    stable: list[Option] = []
    failing: list[Option] = []
    for o in options:
        h = health.get(o.candidate.endpoint_id)
        (probes if h.half_open_probe else failing if h.recent_outage else stable).append(o)
    # The probe goes first so a recovered endpoint gets its one chance promptly; a failed probe
    # still falls back to the rest of the chain.
    failing.sort(key=lambda o: (list_price(o.candidate), o.candidate.endpoint_id))
    return probes + _poor_uptime_last_among_equal_price(weighted_shuffle(stable, rng), health) + failing


def _meets_preferences(o: Option, req: RouteRequest, health: HealthView) -> bool:
    c, h = o.candidate, health.get(o.candidate.endpoint_id)
    min_tps = req.prefs.preferred_min_throughput.get("p50")
    max_latency_s = req.prefs.preferred_max_latency.get("p50")
    tps = effective_throughput(c, h)
    if min_tps is not None and tps is not None and tps < min_tps:
        return False
    latency = effective_latency(c, h)
    return not (max_latency_s is not None and latency is not None and latency > max_latency_s * 1000)


def _order(
    options: list[Option], req: RouteRequest, sort: SortSpec | None, health: HealthView, rng: random.Random
) -> list[Option]:
    prefs = req.prefs
    listed: list[Option] = []
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
        rest = _stable_partition(rest, lambda o: _meets_preferences(o, req, health))
    if "tools" in req.params:
        # Price and speed order the endpoints whose tool calls work; the ones that break them go last.
        rest = _stable_partition(
            rest, lambda o: tool_error_estimate(health.get(o.candidate.endpoint_id)) < BAD_TOOL_ERROR_RATE
        )
    ordered = listed + rest
    if prefs.order is None:
        ordered = _stable_partition(ordered, lambda o: o.compress_to is None)
    if req.service_tier in ("priority", "fast"):
        ordered = _stable_partition(ordered, lambda o: tier_of(o.candidate) == "priority")
    # BYOK first, whatever the order (contract 10.2): the organization pays its provider directly.
    ordered = _stable_partition(ordered, lambda o: o.candidate.is_byok)
    if prefs.order is None and not prefs.allow_fallbacks:
        ordered = ordered[:1]  # only the primary provider
    return ordered


def _closed(options: Sequence[Option], health: HealthView) -> list[Option]:
    """Options whose circuit lets a request through: closed, or this caller holds the half-open probe."""
    out = []
    for o in options:
        h = health.get(o.candidate.endpoint_id)
        if not h.circuit_open or h.half_open_probe:
            out.append(o)
    return out


def plan(resolved: Resolved, health: HealthView, rng: random.Random) -> RoutePlan:
    """The ordered attempts. Pure; raises `RoutingError` (404/503) when nothing can be tried."""
    req = resolved.req
    per_target: list[tuple[Target, list[Option]]] = []
    all_open: list[Option] = []
    for target, options in resolved.choices:
        usable = _closed(options, health)
        if usable:
            per_target.append((target, usable))
        else:
            all_open.extend(options)
    if not per_target:
        raise _failure(resolved, all_open, health)
    if resolved.rerank is not None:
        per_target = rerank(per_target, req, health, resolved.rerank)
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
    return RoutePlan(tuple(attempts), resolved.router)


def _failure(resolved: Resolved, all_open: list[Option], health: HealthView) -> RoutingError:
    if all_open:
        waits = [w for o in all_open if (w := health.get(o.candidate.endpoint_id).retry_after_s) is not None]
        metadata: dict[str, object] = {"error_type": "provider_overloaded"}
        if waits:
            metadata["retry_after"] = min(waits)
        return RoutingError(
            503,
            "No available provider: every endpoint that matches this request is temporarily unavailable "
            "(circuit open after repeated failures). Retry shortly.",
            metadata,
        )
    if resolved.uncredentialed:
        names = sorted({provider_env_prefix(slug) + "_API_KEY" for slug in resolved.uncredentialed})
        return RoutingError(
            503,
            "No provider for this model has upstream credentials configured (set one of: " + ", ".join(names) + ")",
            {"error_type": "provider_unavailable"},
        )
    return _rejection_error(resolved.rejection)


def _rejection_error(rejection: Rejected | None) -> RoutingError:
    assert rejection is not None  # every target was rejected, so there is a first reason
    error_type = "context_length_exceeded" if rejection.status == 400 else "not_found"
    meta: dict[str, object] = {"error_type": error_type}
    if rejection.excluded_by:
        meta["excluded_by"] = [rejection.excluded_by]
    return RoutingError(rejection.status, rejection.message, meta)
