"""`openrouter/auto` and `openrouter/free`: which models a request goes to (contract 5.4; docs/routing.md).

OpenRouter ranks with a task classifier and community data; we have neither, so the policy is
explicit, documented and deterministic (same catalog, same statistics, same request: same choice):

1. **Only models that can answer.** A chat model whose output is text (never an image, audio or
   embedding model unless the request's `modalities` ask for that output), with an endpoint that
   passes every hard filter the request switches on (tools, tool_choice, provider preferences,
   context for prompt + max_tokens, every input modality the prompt carries) and someone's key, and
   that supports the parameters that change the answer's shape: structured outputs /
   `response_format` and reasoning when asked for. Router placeholders and variant ids (`:free`,
   `:thinking`, ...) are not candidates of `openrouter/auto`.
2. **`allowed_models` / `excluded_models`** of the auto-router plugin narrow the candidates (wildcards).
3. **A score** = quality x w_q + price x w_p + latency x w_l, each term in [0, 1]:
   - quality: the catalog's published figures (Artificial Analysis intelligence / coding / agentic
     indices, LMArena overall / coding ranks), each as the model's percentile among the catalog's
     models that have that figure, averaged with a mix the request's signals choose; a figure the
     model lacks counts as the 25th percentile, a model with none of the mix's figures scores 0
     (unknown is never preferred over known-good);
   - price: the cheapest qualifying endpoint's price blended by the request's own token mix
     (prompt tokens vs expected output), as 1 - log10(1 + USD per 1M tokens) / 2, floored at 0;
   - latency: the model's best measured median time to first token, 1 / (1 + seconds); an endpoint
     with no samples counts as one second (neutral).
   Signals (see `signals()`): tools present -> agentic weighs in and bad tool-call rates cost;
   code in the prompt -> coding indices; reasoning asked for -> intelligence, less weight on price
   and latency; long context (>= 32k prompt tokens) -> price weighs double (the prompt dominates).
4. resolve() keeps a shortlist ranked with neutral latency (health is read after resolve, for
   exactly the shortlisted endpoints); plan() re-scores it with the measured latency and tool-call
   quality and keeps the first AUTO_ROUTER_FALLBACKS models whose circuits let a request through.

AUTO_ROUTER_MODELS, when set, replaces 3-4 by a fixed ranking (first qualifying models win).
`openrouter/free` picks, at random as OpenRouter does, up to AUTO_ROUTER_FALLBACKS `:free` models
that pass the same qualification. Nothing qualifying is a 404.
"""

from __future__ import annotations

import math
import random
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

from proxy.catalog.snapshot import Candidate, CatalogSnapshot, ModelInfo
from proxy.health import HealthView
from proxy.routing.filters import eligible, with_credentials
from proxy.routing.prefs import RoutingError
from proxy.routing.types import Option, Rejected, RouteRequest, Target

AUTO_ROUTER = "openrouter/auto"
FREE_ROUTER = "openrouter/free"
# The auto-beta router takes the same plugin options; we apply the same rule to it.
AUTO_ROUTERS = frozenset({AUTO_ROUTER, "openrouter/auto-beta"})
ROUTERS = AUTO_ROUTERS | {FREE_ROUTER}

LONG_CONTEXT_TOKENS = 32_000
EXPECTED_OUTPUT_TOKENS = 1_000  # when max_tokens is not given
NEUTRAL_LATENCY_MS = 1_000.0
NANOS_PER_USD = 1_000_000_000
MISSING_PERCENTILE = 0.25


# --- request signals and the weights they choose ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signals:
    tools: bool = False
    code: bool = False
    reasoning: bool = False
    long_context: bool = False


@dataclass(frozen=True, slots=True)
class Weights:
    quality: float
    price: float
    latency: float
    tool_errors: float  # subtracted x the model's best measured bad tool-call share
    mix: Mapping[str, float]  # quality figure -> weight


def signals(req: RouteRequest) -> Signals:
    return Signals(
        tools="tools" in req.params,
        code=req.code_in_prompt,
        reasoning="reasoning" in req.params,
        long_context=req.prompt_tokens >= LONG_CONTEXT_TOKENS,
    )


def weights_for(sig: Signals) -> Weights:
    """The documented policy (docs/routing.md, "The auto router"): signals add to a general base."""
    mix = {"intelligence": 1.0, "arena_rank": 1.0}
    price, latency, tool_errors = 0.4, 0.2, 0.0
    if sig.code:
        mix["coding"] = mix.get("coding", 0.0) + 2.0
        mix["arena_coding_rank"] = 1.0
        price = 0.3
    if sig.tools:
        mix["agentic"] = 2.0
        tool_errors = 1.0
    if sig.reasoning:
        mix["intelligence"] += 2.0
        price, latency = min(price, 0.25), 0.05
    if sig.long_context:
        price *= 2
    return Weights(quality=1.0, price=price, latency=latency, tool_errors=tool_errors, mix=mix)


_CODE = re.compile(
    r"```|^\s*(?:def |class |import |from \S+ import |function |const |let |#include|public |fn |package |"
    r"SELECT |<\?php|func )|[;{]\s*$",
    re.MULTILINE,
)
_CODE_SCAN_CHARS = 20_000


def code_in_prompt(messages: Iterable[Mapping[str, Any]]) -> bool:
    """Does the prompt carry code (a fence, or code-shaped lines)? Reads at most the last 20k chars."""
    texts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    text = "\n".join(texts)[-_CODE_SCAN_CHARS:]
    return len(_CODE.findall(text)) >= 2 or "```" in text


# --- which models can answer ------------------------------------------------------------------------


def _outputs_ok(info: ModelInfo, req: RouteRequest) -> bool:
    """Text out for a chat request; image/audio output only when the request asks for it."""
    if not info.input_modalities and not info.output_modalities:
        return True
    outs = set(info.output_modalities) or {"text"}
    if "text" not in info.input_modalities:
        return False
    wanted = set(req.output_modalities) or {"text"}
    return wanted <= outs and outs <= wanted | {"text"}


def endpoint_serves(c: Candidate, req: RouteRequest) -> bool:
    """The parameters that change the answer's shape, which a router's choice must honour."""
    params = c.supported_parameters
    if "structured_outputs" in req.params and "structured_outputs" not in params:
        return False
    if "response_format" in req.params and not params & {"response_format", "structured_outputs"}:
        return False
    return "reasoning" not in req.params or bool(params & {"reasoning", "include_reasoning"})


def option_serves(o: Option, req: RouteRequest) -> bool:
    """A router's choice must fit the prompt as sent: compressing it is only for who asked (middle-out)."""
    return endpoint_serves(o.candidate, req) and (o.compress_to is None or req.middle_out is True)


def router_target(info: ModelInfo) -> Target:
    # As resolve.target_for: free endpoints serve only a `:free` id.
    free_id = info.slug.endswith(":free")
    cands = tuple(c for c in info.candidates if c.variant != "router" and (free_id or c.variant != "free"))
    return Target(info.slug, info, cands, None, frozenset())


def serving_options(info: ModelInfo, req: RouteRequest, catalog: CatalogSnapshot) -> list[Option]:
    """The endpoints of `info` that can answer this request (empty: the model does not qualify)."""
    if not _outputs_ok(info, req):
        return []
    try:
        options = eligible(router_target(info), req)
    except Rejected:
        return []
    return [o for o in with_credentials(options, req, catalog) if option_serves(o, req)]


def _allowed(slug: str, req: RouteRequest) -> bool:
    if req.auto_allowed and not any(fnmatchcase(slug, pattern) for pattern in req.auto_allowed):
        return False
    return not any(fnmatchcase(slug, pattern) for pattern in req.auto_excluded)


def _auto_candidate(slug: str) -> bool:
    return ":" not in slug and not slug.startswith("openrouter/")


# --- the score --------------------------------------------------------------------------------------


class QualityTable:
    """Each published figure as a percentile among the catalog's models that have it (0 worst, 1 best).

    Percentiles make the scales comparable: an index out of 100 and an arena rank out of ~150 say
    nothing against each other, a model's standing among its peers does.
    """

    def __init__(self, catalog: CatalogSnapshot) -> None:
        values: dict[str, list[float]] = {}
        for slug, info in catalog.models.items():
            if ":" in slug:
                continue  # a variant repeats its base model's figures
            for name, value in info.quality.items():
                # Ranks: lower is better; negate so that higher is better everywhere.
                values.setdefault(name, []).append(-value if name.endswith("_rank") else value)
        self._sorted = {name: sorted(v) for name, v in values.items()}
        # What auto may pick at all, and each signal mix's quality per model: computed once per
        # catalog, so a request scores only prices and checks eligibility of the few top models.
        self.candidates = tuple(info for slug, info in catalog.models.items() if _auto_candidate(slug))
        # Per candidate: its routable endpoints, and whether it answers a plain (text-out) request.
        plain = RouteRequest(models=())
        self.entries = tuple(
            (info, router_target(info).candidates, _outputs_ok(info, plain)) for info in self.candidates
        )
        self._qualities: dict[Signals, dict[str, float]] = {}

    def qualities(self, sig: Signals) -> dict[str, float]:
        cached = self._qualities.get(sig)
        if cached is None:
            mix = weights_for(sig).mix
            cached = self._qualities[sig] = {info.slug: quality_score(info, mix, self) for info in self.candidates}
        return cached

    def percentile(self, name: str, value: float) -> float:
        ordered = self._sorted.get(name) or [value]
        v = -value if name.endswith("_rank") else value
        below, upto = bisect_left(ordered, v), bisect_right(ordered, v)
        return (below + (upto - below) / 2) / len(ordered)


_tables: dict[int, tuple[CatalogSnapshot, QualityTable]] = {}


def quality_table(catalog: CatalogSnapshot) -> QualityTable:
    """Built once per catalog snapshot (snapshots are immutable; a new one replaces the old)."""
    cached = _tables.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    if len(_tables) >= 4:
        _tables.clear()
    table = QualityTable(catalog)
    _tables[id(catalog)] = (catalog, table)
    return table


def quality_score(info: ModelInfo, mix: Mapping[str, float], table: QualityTable) -> float:
    """The mix's figures as percentiles, weighted; a missing figure counts as MISSING_PERCENTILE
    (below the median: unproven), a model with none of them scores 0."""
    total = weight = 0.0
    known = False
    for name, w in mix.items():
        value = info.quality.get(name)
        known = known or value is not None
        total += w * (table.percentile(name, value) if value is not None else MISSING_PERCENTILE)
        weight += w
    return total / weight if known and weight else 0.0


def blended_usd_per_mtok(c: Candidate, req: RouteRequest) -> float:
    """The endpoint's price per 1M tokens weighted by this request's prompt/output mix (a score, not money)."""
    prompt = max(req.prompt_tokens, 1)
    output = req.max_tokens or EXPECTED_OUTPUT_TOKENS
    nanos = (prompt * c.price.prompt + output * c.price.completion) / (prompt + output)
    return nanos / NANOS_PER_USD


def price_score(options: Sequence[Option], req: RouteRequest) -> float:
    return _price_score([o.candidate for o in options], req)


def _price_score(cands: Sequence[Candidate], req: RouteRequest) -> float:
    usd = min(blended_usd_per_mtok(c, req) for c in cands)
    return max(0.0, 1.0 - math.log10(1.0 + usd) / 2.0)


def latency_score(options: Sequence[Option], health: HealthView | None) -> float:
    best = NEUTRAL_LATENCY_MS
    if health is not None:
        measured = [ms for o in options if (ms := _latency_ms(health, o.candidate.endpoint_id)) is not None]
        best = min(measured, default=NEUTRAL_LATENCY_MS)
    return 1.0 / (1.0 + best / 1000.0)


def _latency_ms(health: HealthView, endpoint_id: int) -> float | None:
    h = health.get(endpoint_id)
    return h.ttft_p50_ms if h.ttft_p50_ms is not None else h.latency_p50_ms


def tool_error_share(options: Sequence[Option], health: HealthView | None) -> float:
    """The best measured bad tool-call share among the model's endpoints (0 when none is measured)."""
    if health is None:
        return 0.0
    shares = [s for o in options if (s := health.get(o.candidate.endpoint_id).tool_error_rate) is not None]
    return min(shares, default=0.0)


def score(
    info: ModelInfo, options: Sequence[Option], req: RouteRequest, health: HealthView | None, table: QualityTable
) -> float:
    w = weights_for(signals(req))
    return (
        w.quality * quality_score(info, w.mix, table)
        + w.price * price_score(options, req)
        + w.latency * latency_score(options, health)
        - w.tool_errors * tool_error_share(options, health)
    )


def rank(
    scored: Iterable[tuple[ModelInfo, Sequence[Option]]],
    req: RouteRequest,
    health: HealthView | None,
    table: QualityTable,
) -> list[str]:
    """Model ids best first; ties go to the lexically first id (deterministic)."""
    keyed = [(-score(info, options, req, health, table), info.slug) for info, options in scored]
    keyed.sort()
    return [slug for _, slug in keyed]


# --- the routers ------------------------------------------------------------------------------------


def shortlist_size() -> int:
    """How many models resolve keeps for plan() to re-score with measured latency."""
    return max(3 * int(settings.AUTO_ROUTER_FALLBACKS), 6)


def _no_match() -> RoutingError:
    return RoutingError(404, "No models match your request and model restrictions", {"error_type": "not_found"})


def auto_models(req: RouteRequest, catalog: CatalogSnapshot, ranking: Sequence[str] | None = None) -> tuple[str, ...]:
    """The model ids `openrouter/auto` considers for this request, best first.

    With a fixed ranking (argument or AUTO_ROUTER_MODELS): its first AUTO_ROUTER_FALLBACKS
    qualifying ids. Otherwise the policy's shortlist (plan() re-scores it and keeps the fallbacks).
    """
    fixed = list(ranking) if ranking is not None else list(settings.AUTO_ROUTER_MODELS)
    if fixed:
        picked: list[str] = []
        for slug in fixed:
            info = catalog.get(slug)
            if info is None or slug in picked or not _allowed(slug, req):
                continue
            if serving_options(info, req, catalog):
                picked.append(slug)
            if len(picked) >= settings.AUTO_ROUTER_FALLBACKS:
                break
        if not picked:
            raise _no_match()
        return tuple(picked)
    table, size = quality_table(catalog), shortlist_size()
    sig = signals(req)
    w, qualities = weights_for(sig), table.qualities(sig)
    neutral = latency_score((), None)
    # Best-first by an upper bound (price over every reachable endpoint, which can only be as cheap
    # as the qualifying ones); eligibility, the costly part, is checked only until the bound of the
    # next model cannot beat the shortlist. Same result as scoring every model, in a fraction.
    bounds: list[tuple[float, str, ModelInfo]] = []
    prompt, output = max(req.prompt_tokens, 1), req.max_tokens or EXPECTED_OUTPUT_TOKENS
    per_usd = (prompt + output) * NANOS_PER_USD
    keys, filtered = catalog.configured | req.byok_providers, bool(req.auto_allowed or req.auto_excluded)
    for info, cands, plain_ok in table.entries:
        if (filtered and not _allowed(info.slug, req)) or not (
            plain_ok if not req.output_modalities else _outputs_ok(info, req)
        ):
            continue
        nanos = [prompt * c.price.prompt + output * c.price.completion for c in cands if c.provider_slug in keys]
        if nanos:
            price = max(0.0, 1.0 - math.log10(1.0 + min(nanos) / per_usd) / 2.0)
            bound = w.quality * qualities[info.slug] + w.price * price + w.latency * neutral
            bounds.append((-bound, info.slug, info))
    bounds.sort(key=lambda b: (b[0], b[1]))
    ranked: list[tuple[float, str]] = []
    for negative_bound, slug, info in bounds:
        if len(ranked) >= size and sorted(ranked)[size - 1][0] < negative_bound:
            break
        options = serving_options(info, req, catalog)
        if options:
            ranked.append((-score(info, options, req, None, table), slug))
    if not ranked:
        raise _no_match()
    return tuple(slug for _, slug in sorted(ranked)[:size])


def policy_ranked(req: RouteRequest) -> bool:
    """Whether plan() re-scores the auto router's models (no fixed AUTO_ROUTER_MODELS ranking)."""
    return not settings.AUTO_ROUTER_MODELS


def free_models(req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random) -> tuple[str, ...]:
    """`openrouter/free`: free (`:free`) chat models that can serve the request, in random order."""
    fitting = sorted(
        slug
        for slug, info in catalog.models.items()
        if slug.endswith(":free") and _allowed(slug, req) and serving_options(info, req, catalog)
    )
    rng.shuffle(fitting)
    if not fitting:
        raise RoutingError(404, "No free models match your request", {"error_type": "not_found"})
    return tuple(fitting[: settings.AUTO_ROUTER_FALLBACKS])


def router_models(model_id: str, req: RouteRequest, catalog: CatalogSnapshot, rng: random.Random) -> tuple[str, ...]:
    """The models a router id stands for (`model_id` must be one of ROUTERS)."""
    return free_models(req, catalog, rng) if model_id == FREE_ROUTER else auto_models(req, catalog)


def rerank(
    per_target: list[tuple[Target, list[Option]]], req: RouteRequest, health: HealthView, table: QualityTable
) -> list[tuple[Target, list[Option]]]:
    """plan()'s step for the policy: re-score the shortlist with measured figures, keep the fallbacks."""
    by_slug = {t.model_slug: (t, opts) for t, opts in per_target}
    order = rank(((t.info, opts) for t, opts in per_target), req, health, table)
    return [by_slug[slug] for slug in order[: settings.AUTO_ROUTER_FALLBACKS]]
