"""Hard filters: which of a target's endpoints may serve this request at all (docs/routing.md).

Each filter that removes the last endpoints names itself in the 404 (`metadata.excluded_by`, the
contract's 4.4 vocabulary). The credential filter comes last: an endpoint nobody holds a key for
is never tried, whatever else it supports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from proxy.catalog.snapshot import Candidate, CatalogSnapshot, ModelInfo
from proxy.routing.prefs import MaxPrice, ProviderPrefs
from proxy.routing.types import Option, Rejected, RouteRequest, Target

SERVICE_TIERS = frozenset({"priority", "flex"})
# Contract 2.4: compression is on by default for endpoints with at most this much context.
AUTO_COMPRESS_MAX_CONTEXT = 8_192
# Parameters that steer among a model's endpoints without ever removing the model (contract 2.3).
SOFT_PARAMS = frozenset({"response_format", "structured_outputs", "verbosity"})

_ALLOWED = "allowed_providers"
_PARAMS = "require_parameters"


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


# --- credentials ---------------------------------------------------------------------------------


def reachable(candidate: Candidate, req: RouteRequest, catalog: CatalogSnapshot) -> bool:
    """The organization has its own key for the provider (BYOK), or the platform can call it."""
    slug = candidate.provider_slug
    return slug in req.byok_providers or slug in catalog.configured


def with_credentials(options: list[Option], req: RouteRequest, catalog: CatalogSnapshot) -> list[Option]:
    """The options someone holds a key for; the organization's own key (BYOK) wins over the platform's."""
    out: list[Option] = []
    for o in options:
        if o.candidate.provider_slug in req.byok_providers:
            out.append(replace(o, candidate=replace(o.candidate, is_byok=True)))
        elif o.candidate.provider_slug in catalog.configured:
            out.append(o)
    return out


# --- hard filters --------------------------------------------------------------------------------


def _no_endpoints(detail: str, excluded_by: str | None) -> Rejected:
    return Rejected(404, f"No endpoints found {detail}", excluded_by)


def _tier_allowed(target: Target, prefs: ProviderPrefs, service_tier: str | None) -> Callable[[Candidate], bool]:
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


def _filters(target: Target, req: RouteRequest) -> list[Rule]:
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


def _context_options(target: Target, cands: list[Candidate], req: RouteRequest) -> list[Option]:
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
        raise Rejected(
            404,
            f"No endpoints found for {target.model_slug} that can produce {req.max_tokens} tokens",
            "context_length",
        )
    fitting = [Option(c, target, None) for c in emitters if c.context_length <= 0 or required <= c.context_length]
    squeezable = [c for c in emitters if c.context_length > 0 and required > c.context_length and compressible(c)]
    # Contract 2.4: prefer endpoints whose context holds at least half the prompt, else the largest.
    halfway = [c for c in squeezable if 2 * c.context_length >= required]
    if not halfway and squeezable and not fitting:
        largest = max(c.context_length for c in squeezable)
        halfway = [c for c in squeezable if c.context_length == largest]
    options = fitting + [Option(c, target, c.context_length - out_tokens) for c in halfway]
    if not options:
        biggest = max(c.context_length for c in emitters)
        raise Rejected(
            400,
            f"This endpoint's maximum context length is {biggest} tokens. However, you requested about "
            f"{required} tokens ({req.prompt_tokens} of text input, {out_tokens} in the output). Please reduce "
            'the length of either one, or use the "middle-out" transform to compress your prompt automatically.',
            "context_length",
        )
    return options


def eligible(target: Target, req: RouteRequest) -> list[Option]:
    """The target's endpoints that pass every hard filter; raises `Rejected` naming the one that emptied it."""
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
