"""Admission: everything before the first upstream byte. Authenticate, parse, route, reserve -> `Call`.

Nothing here writes to the database. The only I/O is the key/org cache (a database read on a miss
only) and one Redis round trip, the credit admission that holds the worst case of every attempt:
endpoint health comes from the health store's in-process snapshot (proxy/health/redis_store.py).
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
from proxy.gateway.policy import enforce_plan, enforce_request, explain
from proxy.gateway.settle import release
from proxy.gateway.shape import new_generation_id
from proxy.gateway.validate import ParsedRequest, parse_json, parse_request
from proxy.health import get_health_store
from proxy.plugins.web import WebSearchError, hold_nanos, prompt_bound_tokens, web_search_apply
from proxy.routing import RoutePlan, RouteRequest, RoutingError, parse_provider_prefs, plan, prefs_with_route, resolve
from proxy.routing.auto import ROUTERS, code_in_prompt
from proxy.skins.base import Skin, SkinRequestError
from proxy.tokens import count_images, estimate_prompt_tokens, estimate_text_tokens, prompt_tokens_bound

_rng = random.Random()  # noqa: S311  (load balancing, not security)

_MODALITY_PARTS = {
    "image_url": "image",
    "input_audio": "audio",
    "video_url": "video",
    "input_video": "video",
    "file": "file",
}


async def admit(scope: Scope, receive: Receive, *, legacy: bool, skin: Skin | None = None) -> Call:
    """Raises GatewayError for the client: 401/403 key, 400/413 body, 400/404/503 routing, 402/429 credit."""
    key = await authenticate(authorization(scope, skin))
    raw = await read_body(receive, settings.MAX_REQUEST_BYTES)
    req = parse_skin_request(raw, skin) if skin is not None else parse_request(raw, legacy_completion=legacy)
    req.session_id = req.session_id or header(scope, b"x-session-id")[:256]  # sticky routing; the body wins
    org, catalog = await org_context(key.state.org_id), await get_catalog()
    prompt_tokens = prompt_estimate(req)
    routed = await _route(req, org, catalog, prompt_tokens, key.allowed_models)
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
        skin=skin,
    )
    await _reserve(call)
    await _web_search(call)
    return call


async def _web_search(call: Call) -> None:
    """The web plugin's search, once per request, after the hold: an engine failure releases the
    hold (no credit moves) and answers 502."""
    options = call.req.web
    if options is None:
        return
    try:
        call.web = await web_search_apply(call.req.body, options)
    except WebSearchError as exc:
        await release(call)
        raise GatewayError(exc.status, exc.message, {"error_type": "web_search_failed"}) from exc


def authorization(scope: Scope, skin: Skin | None) -> str:
    """The Authorization header; skin clients (the anthropic SDK) may send the key as `x-api-key` instead."""
    value = header(scope, b"authorization")
    if not value and skin is not None:
        api_key = header(scope, b"x-api-key").strip()
        if api_key:
            return f"Bearer {api_key}"
    return value


def parse_skin_request(raw: bytes, skin: Skin) -> ParsedRequest:
    """The skin translates its request into the chat body, which then gets chat's own validation."""
    try:
        chat = skin.translate(parse_json(raw))
    except SkinRequestError as exc:
        raise GatewayError(exc.status, exc.message) from exc
    return parse_request(orjson.dumps(chat))


async def count_tokens(scope: Scope, receive: Receive, skin: Skin) -> int:
    """The prompt estimate admission would hold credit for, for a skin's request (no routing, no hold)."""
    await authenticate(authorization(scope, skin))
    raw = await read_body(receive, settings.MAX_REQUEST_BYTES)
    return prompt_estimate(parse_skin_request(raw, skin))


def prompt_estimate(req: ParsedRequest) -> int:
    prompt_tokens = estimate_prompt_tokens(req.body["messages"])
    if req.body.get("tools"):
        prompt_tokens += estimate_text_tokens(orjson.dumps(req.body["tools"]).decode())
    return prompt_tokens


async def _route(
    req: ParsedRequest, org: OrgContext, catalog: CatalogSnapshot, prompt_tokens: int, key_models: tuple[str, ...]
) -> RoutePlan:
    """Resolve, look up the health of exactly the resolved endpoints (in process), then order.

    The organization's data policy and the key's model restriction (gateway/policy.py) apply to
    every request: merged into the preferences as the stricter of the two, and checked on the plan.
    """
    try:
        route_request = enforce_request(
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
                # Signals for the auto router's weights; scanning the prompt only when a router picks.
                code_in_prompt=any(m in ROUTERS for m in req.models) and code_in_prompt(req.body["messages"]),
                output_modalities=_output_modalities(req.body.get("modalities")),
            ),
            org.policy,
            key_models,
        )
        resolved = resolve(route_request, catalog, _rng)
        health = await get_health_store().view(resolved.endpoint_ids)
        return enforce_plan(plan(resolved, health, _rng), org.policy, key_models)
    except RoutingError as raised:
        exc = explain(raised, org.policy)
        retry_after = (exc.metadata or {}).get("retry_after")
        headers = {"Retry-After": str(math.ceil(float(retry_after)))} if retry_after else None
        raise GatewayError(exc.status, exc.message, exc.metadata, headers) from exc


def _output_modalities(value: object) -> frozenset[str]:
    """The request's `modalities` (["image", "text"]): outputs a router may pick a model for."""
    if not isinstance(value, list):
        return frozenset()
    return frozenset(m for m in value if isinstance(m, str))


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


def worst_case(call: Call, candidate: Candidate, prompt_bound: int | None = None) -> int:
    """The most this attempt can cost: what the credit hold must cover if it is the one that answers.

    The prompt side is `prompt_tokens_bound` (UTF-8 bytes plus allowances), not routing's estimate,
    so no tokenizer can count more than was held; a prompt cannot exceed the context window either.
    """
    bound = prompt_tokens_bound(call.req.body) if prompt_bound is None else prompt_bound
    if candidate.context_length > 0:
        bound = max(min(bound, candidate.context_length), call.prompt_tokens)
    limit = output_bound(call, candidate)
    images = count_images(call.req.body["messages"])
    # The list-price worst case even for BYOK: the gate turns it into the fee when every attempt is BYOK.
    return worst_case_nanos(prompt_tokens=bound, max_completion_tokens=limit, price=candidate.price, images=images)


def output_bound(call: Call, candidate: Candidate) -> int:
    """The completion tokens the hold covers; streaming stops an upstream that goes past it."""
    limit = call.req.max_tokens or candidate.max_completion_tokens
    if limit is None:
        # Neither the request nor the endpoint bounds the output: hold a capped worst case rather
        # than a whole long context window, which would refuse small balances for cheap requests.
        limit = max(min(candidate.context_length - call.prompt_tokens, settings.GATEWAY_HOLD_MAX_OUTPUT_TOKENS), 1)
    return int(limit)


async def _reserve(call: Call) -> None:
    """Hold the worst case of every attempt we might make, so failover can never overspend."""
    bound = prompt_tokens_bound(call.req.body)
    web = call.req.web
    if web is not None:  # the search results are injected after the hold: hold for their longest
        bound += prompt_bound_tokens(web.max_results, web.search_prompt)
    amount = max(worst_case(call, a.candidate, bound) for a in call.attempts)
    # Web search is charged even on free models, so such a request is held like a paid one.
    is_free = web is None and all(a.candidate.variant == "free" for a in call.attempts)
    admission = await get_gate().admit(
        reservation_id=call.generation_id,
        key=call.key_state,
        amount_nanos=amount,
        is_free=is_free,
        # Only a request that can never touch platform capacity is held at the BYOK fee.
        is_byok=all(a.candidate.is_byok for a in call.attempts),
        plugin_nanos=hold_nanos(web),  # the search is the platform's cost: held in full, BYOK or not
    )
    if not admission.ok:
        headers = dict(admission.headers)
        if admission.retry_after is not None:
            headers["Retry-After"] = str(admission.retry_after)
        raise GatewayError(admission.status, admission.message, admission.metadata, headers)
