"""An organization's data policy (and a key's model restriction), enforced on every request of every key.

The policy is merged into the request's `ProviderPrefs` as the stricter of the two, so routing's own
hard filters do the work and a request can tighten it but never loosen it:

- "no training/retention" -> `data_collection: "deny"` whatever the request says;
- "ZDR only"              -> `zdr: true`;
- allowed providers       -> `only` (intersected with the request's own `only`, never widened);
- blocked providers       -> added to `ignore`.

Allowed models (organization-wide and per key, `author/*` wildcards) are checked before routing: a
requested model neither allows is dropped from the fallback list, and when none is left the request
is refused with 403 and `excluded_by` naming the policy. The routed plan is checked once more
(`enforce_plan`), so what a router picked, or a provider named in an unusual way, cannot slip
through. Pure: no I/O; the policy travels in the gateway's per-process org/key cache (auth.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from proxy.catalog.snapshot import Candidate, CatalogSnapshot, ModelInfo
from proxy.routing import RoutePlan, RouteRequest, RoutingError
from proxy.routing.auto import ROUTERS
from proxy.routing.prefs import ProviderPrefs

if TYPE_CHECKING:
    from organizations.models import ApiKey, Organization

ORG_POLICY = "org_policy"
ORG_MODELS = "org_policy:allowed_models"
KEY_MODELS = "key_policy:allowed_models"


@dataclass(frozen=True, slots=True)
class DataPolicy:
    """The organization-wide part; empty tuples mean "no restriction"."""

    deny_data_collection: bool = False
    zdr_only: bool = False
    allowed_providers: tuple[str, ...] = ()  # lowercased provider slugs
    blocked_providers: tuple[str, ...] = ()
    allowed_models: tuple[str, ...] = ()  # lowercased model ids or fnmatch patterns (author/*)

    @property
    def restricts_providers(self) -> bool:
        return bool(self.allowed_providers or self.blocked_providers)

    @property
    def is_open(self) -> bool:
        return self == NO_POLICY


NO_POLICY = DataPolicy()


def _lowered(values: Iterable[Any] | None) -> tuple[str, ...]:
    return tuple(str(v).strip().lower() for v in values or () if str(v).strip())


def data_policy_of(organization: Organization) -> DataPolicy:
    """The policy stored on an Organization row (organizations/policy.py validates what is written)."""
    return DataPolicy(
        deny_data_collection=organization.policy_deny_data_collection,
        zdr_only=organization.policy_zdr_only,
        allowed_providers=_lowered(organization.policy_allowed_providers),
        blocked_providers=_lowered(organization.policy_blocked_providers),
        allowed_models=_lowered(organization.policy_allowed_models),
    )


def key_models_of(api_key: ApiKey) -> tuple[str, ...]:
    return _lowered(api_key.allowed_models)


# --- models --------------------------------------------------------------------------------------


def model_matches(model_id: str, patterns: tuple[str, ...]) -> bool:
    """`patterns` empty allows all; otherwise an exact id or a wildcard (`anthropic/*`) must match.

    A variant (`x/y:free`) is allowed when its base model is: the restriction is about which model
    sees the data, and a variant is the same model served differently.
    """
    if not patterns:
        return True
    lowered = model_id.strip().lower()
    base = lowered.split(":", 1)[0]
    return any(fnmatchcase(lowered, p) or fnmatchcase(base, p) for p in patterns)


def _model_refusal(model_id: str, policy: DataPolicy, key_models: tuple[str, ...]) -> RoutingError | None:
    if not model_matches(model_id, policy.allowed_models):
        return RoutingError(
            403,
            f"Model {model_id} is not allowed by your organization's data policy "
            f"(allowed models: {', '.join(policy.allowed_models)})",
            {"error_type": "permission_denied", "excluded_by": [ORG_MODELS]},
        )
    if not model_matches(model_id, key_models):
        return RoutingError(
            403,
            f"Model {model_id} is not allowed for this API key (allowed models: {', '.join(key_models)})",
            {"error_type": "permission_denied", "excluded_by": [KEY_MODELS]},
        )
    return None


def _allowed_models(models: tuple[str, ...], policy: DataPolicy, key_models: tuple[str, ...]) -> tuple[str, ...]:
    """The requested ids either list allows, in order; raises the first one's 403 when none is.

    Router ids (`openrouter/auto`) pass here: the models they pick are checked in `enforce_plan`.
    """
    kept: list[str] = []
    first: RoutingError | None = None
    for model_id in models:
        refusal = None if model_id in ROUTERS else _model_refusal(model_id, policy, key_models)
        if refusal is None:
            kept.append(model_id)
        else:
            first = first or refusal
    if not kept and first is not None:
        raise first
    return tuple(kept)


# --- providers -----------------------------------------------------------------------------------


def endpoint_allowed(candidate: Candidate, policy: DataPolicy) -> bool:
    """The policy's provider and data rules for one endpoint, the same ones routing's filters apply."""
    if policy.deny_data_collection and (candidate.retains_prompts or candidate.trains_on_prompts):
        return False
    if policy.zdr_only and not candidate.zdr:
        return False
    slug = candidate.provider_slug.lower()
    if policy.allowed_providers and slug not in policy.allowed_providers:
        return False
    return slug not in policy.blocked_providers


def _provider_part(entry: str) -> str:
    # A request names a provider by slug, full tag (`openai/flex`) or display name.
    return entry.strip().lower().split("/", 1)[0]


def merge_prefs(prefs: ProviderPrefs, policy: DataPolicy) -> ProviderPrefs:
    """The stricter of the request's preferences and the policy: the result never allows more than either."""
    if policy.is_open:
        return prefs
    changes: dict[str, Any] = {}
    if policy.deny_data_collection:
        changes["data_collection"] = "deny"
    if policy.zdr_only:
        changes["zdr"] = True
    if policy.allowed_providers:
        allowed = set(policy.allowed_providers)
        # An entry the policy cannot vouch for (e.g. a display name that is not the slug) is dropped:
        # the intersection may come out narrower than exact, never wider. Empty means nothing matches.
        changes["only"] = (
            policy.allowed_providers
            if prefs.only is None
            else tuple(e for e in prefs.only if _provider_part(e) in allowed)
        )
    if policy.blocked_providers:
        changes["ignore"] = (*(prefs.ignore or ()), *policy.blocked_providers)
    return replace(prefs, **changes) if changes else prefs


# --- the three calls admission makes -------------------------------------------------------------


def enforce_request(req: RouteRequest, policy: DataPolicy, key_models: tuple[str, ...] = ()) -> RouteRequest:
    """The route request with the policy applied; raises `RoutingError(403)` when no requested model is allowed."""
    if policy.is_open and not key_models:
        return req
    models = _allowed_models(req.models, policy, key_models)
    auto_allowed = req.auto_allowed
    if not auto_allowed and any(m in ROUTERS for m in models):
        # Let the router choose among allowed models (the key's list is the narrower one when both exist);
        # enforce_plan still checks every pick against both lists.
        auto_allowed = key_models or policy.allowed_models
    return replace(req, models=models, prefs=merge_prefs(req.prefs, policy), auto_allowed=auto_allowed)


def enforce_plan(routed: RoutePlan, policy: DataPolicy, key_models: tuple[str, ...] = ()) -> RoutePlan:
    """Drop any attempt the policy forbids (defence in depth behind the merged preferences)."""
    if policy.is_open and not key_models:
        return routed
    attempts = tuple(
        a
        for a in routed.attempts
        if endpoint_allowed(a.candidate, policy) and _model_refusal(a.model_slug, policy, key_models) is None
    )
    if attempts:
        return routed if len(attempts) == len(routed.attempts) else replace(routed, attempts=attempts)
    for a in routed.attempts:
        refusal = _model_refusal(a.model_slug, policy, key_models)
        if refusal is not None:
            raise refusal
    raise RoutingError(
        404,
        "No endpoints found matching your organization's data policy",
        {"error_type": "not_found", "excluded_by": [ORG_POLICY]},
    )


def explain(exc: RoutingError, policy: DataPolicy) -> RoutingError:
    """A 404 whose last filter the organization's policy switched on says so (`excluded_by` gains `org_policy`)."""
    metadata = exc.metadata or {}
    excluded = list(metadata.get("excluded_by") or ())
    reasons = []
    if policy.deny_data_collection and "data_policy:training" in excluded:
        reasons.append("providers that may train on or retain prompts are excluded")
    if policy.zdr_only and "data_policy:zdr" in excluded:
        reasons.append("only Zero-Data-Retention endpoints are allowed")
    if policy.restricts_providers and "allowed_providers" in excluded:
        reasons.append(_providers_summary(policy))
    if exc.status != 404 or not reasons or ORG_POLICY in excluded:
        return exc
    message = f"{exc.message} (your organization's data policy: {'; '.join(reasons)})"
    return RoutingError(exc.status, message, {**metadata, "excluded_by": [*excluded, ORG_POLICY]})


def _providers_summary(policy: DataPolicy) -> str:
    parts = []
    if policy.allowed_providers:
        parts.append(f"allowed providers: {', '.join(policy.allowed_providers)}")
    if policy.blocked_providers:
        parts.append(f"blocked providers: {', '.join(policy.blocked_providers)}")
    return ", ".join(parts)


# --- /models/user --------------------------------------------------------------------------------


def visible_models(catalog: CatalogSnapshot, policy: DataPolicy, key_models: tuple[str, ...] = ()) -> frozenset[str]:
    """Model ids a key under this policy could be routed to: allowed, with at least one endpoint the policy keeps."""
    out: set[str] = set()
    for slug, info in catalog.models.items():
        if _model_visible(slug, info, policy, key_models):
            out.add(slug)
    return frozenset(out)


def _model_visible(slug: str, info: ModelInfo, policy: DataPolicy, key_models: tuple[str, ...]) -> bool:
    if slug in ROUTERS:
        return True  # a router picks among the allowed models at request time
    if _model_refusal(slug, policy, key_models) is not None:
        return False
    return any(endpoint_allowed(c, policy) for c in info.candidates)
