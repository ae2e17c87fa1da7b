"""Building the upstream call for one attempt, and mapping what went wrong into the client's error."""

from __future__ import annotations

from typing import Any

from proxy.catalog.snapshot import Candidate
from proxy.gateway.call import Call
from proxy.gateway.errors import GatewayError
from proxy.providers import get_adapter
from proxy.providers.base import HttpCall, ProviderError, Target
from proxy.routing import Attempt
from proxy.routing.filters import tier_of
from proxy.transforms import middle_out
from proxy.transport import Timeouts, TransportError

UpstreamFailure = ProviderError | TransportError


def upstream_call(call: Call, attempt: Attempt, *, stream: bool) -> tuple[HttpCall, Timeouts]:
    """The provider request for this attempt: the adapter's translation, with the attempt's key and timeouts."""
    candidate = attempt.candidate
    body = call.req.body
    if attempt.reasoning_default and "reasoning" not in body:
        body = {**body, "reasoning": {"enabled": True, "effort": None, "max_tokens": None, "exclude": False}}
    body = _tier_for(body, candidate)
    if attempt.compress_to:
        body = {**body, "messages": middle_out(body["messages"], max_prompt_tokens=attempt.compress_to)}
    key = call.org.byok_keys.get(candidate.provider_slug) if candidate.is_byok else None
    target = Target(
        base_url=candidate.base_url,
        api_key=key or call.catalog.platform_keys.get(candidate.provider_slug, ""),
        upstream_model=candidate.upstream_model,
        provider_slug=candidate.provider_slug,
    )
    http_call = get_adapter(candidate.adapter).build_request(body, target, stream=stream)  # type: ignore[arg-type]
    timeouts = Timeouts(
        connect_s=candidate.connect_timeout_ms / 1000,
        first_byte_s=candidate.first_byte_timeout_ms / 1000,
        idle_s=candidate.idle_timeout_ms / 1000,
    )
    return http_call, timeouts


def _tier_for(body: dict[str, Any], candidate: Candidate) -> dict[str, Any]:
    """Ask the upstream for the tier of the endpoint we price this attempt at (contract 10.4).

    The client's tier is forwarded only to an endpoint of that tier: "priority" falling over to a
    standard endpoint must not be served (and charged to us) at priority while we bill standard.
    """
    tier = tier_of(candidate)
    requested = body.get("service_tier")
    if tier is not None:
        matches = requested == tier or (tier == "priority" and requested == "fast")
        return body if matches else {**body, "service_tier": tier}
    if requested in _TIERED:
        return {k: v for k, v in body.items() if k != "service_tier"}
    return body


_TIERED = frozenset({"priority", "fast", "flex"})


def failure_status(exc: UpstreamFailure) -> int:
    """The upstream's HTTP status for the attempt record (0: it never answered)."""
    return (exc.upstream_status or exc.status) if isinstance(exc, ProviderError) else 0


def retryable(exc: UpstreamFailure) -> bool:
    """Another provider may serve it: transport failures, 429 and 5xx; never a 4xx the request caused."""
    return not isinstance(exc, ProviderError) or exc.retryable


def upstream_error(exc: UpstreamFailure, candidate: Candidate) -> GatewayError:
    if isinstance(exc, ProviderError):
        headers = {"Retry-After": str(int(exc.retry_after))} if exc.retry_after else None
        meta = {"provider_name": candidate.provider_name, "raw": exc.raw, "error_type": exc.error_type}
        return GatewayError(exc.status, exc.message, meta, headers)
    if exc.kind in ("first_byte_timeout", "idle_timeout"):
        return GatewayError(
            408,
            f"{candidate.provider_name}: {exc.message}",
            {"error_type": "timeout", "provider_name": candidate.provider_name},
        )
    return GatewayError(
        502,
        f"{candidate.provider_name}: {exc.message}",
        {"error_type": "provider_unavailable", "provider_name": candidate.provider_name},
    )
