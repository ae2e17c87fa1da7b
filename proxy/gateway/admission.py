"""Admission: everything before the first upstream byte. Authenticate, parse, route, reserve -> `Call`.

Nothing here writes to the database. The only I/O is the key/org cache (a database read on a miss
only) and two Redis round trips: the health of exactly the endpoints routing resolved, and the
credit admission that holds the worst case of every attempt.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import orjson
from django.conf import settings

from billing.gate import get_gate
from billing.pricing import worst_case_nanos
from proxy.catalog.snapshot import Candidate, CatalogSnapshot
from proxy.gateway.attempts import within_budget
from proxy.gateway.auth import OrgContext, authenticate, org_context
from proxy.gateway.call import Call
from proxy.gateway.catalog import get_catalog
from proxy.gateway.errors import GatewayError
from proxy.gateway.http import Receive, Scope, header, read_body
from proxy.gateway.shape import new_generation_id
from proxy.gateway.validate import ParsedRequest, parse_request
from proxy.health import get_health_store
from proxy.routing import RoutePlan, RouteRequest, RoutingError, parse_provider_prefs, plan, prefs_with_route, resolve
from proxy.tokens import count_images, estimate_prompt_tokens, estimate_text_tokens

_rng = random.Random()  # noqa: S311  (load balancing, not security)

_MODALITY_PARTS = {
    "image_url": "image",
    "input_audio": "audio",
    "video_url": "video",
    "input_video": "video",
    "file": "file",
}


async def admit(scope: Scope, receive: Receive, *, legacy: bool) -> Call:
    """Raises GatewayError for the client: 401/403 key, 400/413 body, 400/404/503 routing, 402/429 credit."""
    key = await authenticate(header(scope, b"authorization"))
    raw = await read_body(receive, settings.MAX_REQUEST_BYTES)
    req = parse_request(raw, legacy_completion=legacy)
    org, catalog = await org_context(key.state.org_id), await get_catalog()
    prompt_tokens = estimate_prompt_tokens(req.body["messages"])
    if req.body.get("tools"):
        prompt_tokens += estimate_text_tokens(orjson.dumps(req.body["tools"]).decode())
    routed = await _route(req, org, catalog, prompt_tokens)
    call = Call(
        generation_id=new_generation_id(),
        created=int(time.time()),
        t0=time.perf_counter(),
        key=key,
        org=org,
        req=req,
        attempts=within_budget(routed.attempts),
        catalog=catalog,
        prompt_tokens=prompt_tokens,
        router=routed.router or "",
        http_referer=header(scope, b"http-referer")[:500],
        app_title=(header(scope, b"x-openrouter-title") or header(scope, b"x-title"))[:200],
    )
    await _reserve(call)
    return call


async def _route(req: ParsedRequest, org: OrgContext, catalog: CatalogSnapshot, prompt_tokens: int) -> RoutePlan:
    """Resolve, read the health of exactly the resolved endpoints (one round trip), then order."""
    try:
        resolved = resolve(
            RouteRequest(
                models=req.models,
                prefs=prefs_with_route(parse_provider_prefs(req.provider), req.route),
                prompt_tokens=prompt_tokens,
                max_tokens=req.max_tokens,
                params=req.params,
                byok_providers=frozenset(org.byok_keys),
                input_modalities=input_modalities(req.body["messages"]),
                middle_out=req.middle_out,
                service_tier=req.body.get("service_tier"),
                auto_allowed=req.auto_allowed,
                auto_excluded=req.auto_excluded,
            ),
            catalog,
            _rng,
        )
        health = await get_health_store().view(resolved.endpoint_ids)
        return plan(resolved, health, _rng)
    except RoutingError as exc:
        retry_after = (exc.metadata or {}).get("retry_after")
        headers = {"Retry-After": str(math.ceil(float(retry_after)))} if retry_after else None
        raise GatewayError(exc.status, exc.message, exc.metadata, headers) from exc


def input_modalities(messages: list[dict[str, Any]]) -> frozenset[str]:
    """Non-text inputs the prompt carries, so routing only picks endpoints that accept them."""
    found: set[str] = set()
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                kind = _MODALITY_PARTS.get(part.get("type", "")) if isinstance(part, dict) else None
                if kind:
                    found.add(kind)
    return frozenset(found)


def worst_case(call: Call, candidate: Candidate) -> int:
    """The most this attempt can cost: what the credit hold must cover if it is the one that answers."""
    limit = call.req.max_tokens or candidate.max_completion_tokens
    if limit is None:
        # Neither the request nor the endpoint bounds the output: hold a capped worst case rather
        # than a whole long context window, which would refuse small balances for cheap requests.
        # A longer answer is still billed in full (docs/billing-policy.md bounds the overspend).
        limit = max(min(candidate.context_length - call.prompt_tokens, settings.GATEWAY_HOLD_MAX_OUTPUT_TOKENS), 1)
    images = count_images(call.req.body["messages"])
    # The list-price worst case even for BYOK: the gate turns it into the fee when every attempt is BYOK.
    return worst_case_nanos(
        prompt_tokens=call.prompt_tokens, max_completion_tokens=limit, price=candidate.price, images=images
    )


async def _reserve(call: Call) -> None:
    """Hold the worst case of every attempt we might make, so failover can never overspend."""
    amount = max(worst_case(call, a.candidate) for a in call.attempts)
    is_free = all(a.candidate.variant == "free" for a in call.attempts)
    admission = await get_gate().admit(
        reservation_id=call.generation_id,
        key=call.key_state,
        amount_nanos=amount,
        is_free=is_free,
        # Only a request that can never touch platform capacity is held at the BYOK fee.
        is_byok=all(a.candidate.is_byok for a in call.attempts),
    )
    if not admission.ok:
        headers = dict(admission.headers)
        if admission.retry_after is not None:
            headers["Retry-After"] = str(admission.retry_after)
        raise GatewayError(admission.status, admission.message, admission.metadata, headers)
