"""One completion request, end to end: authenticate, parse, route, reserve, call upstream, settle.

Nothing here writes to the database. The only I/O before the upstream call is the key/org cache
(a database read on a miss only) and two Redis round trips (health view, credit admission); the
usage record goes to the settlement queue inside the gate's `finish`.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from billing.gate import KeyState, get_gate
from billing.pricing import Usage, cost_nanos, worst_case_nanos
from billing.usage import UsageEvent
from proxy.catalog.snapshot import Candidate, CatalogSnapshot
from proxy.credentials import provider_env_prefix
from proxy.gateway.auth import KeyRecord, OrgContext, authenticate, org_context
from proxy.gateway.catalog import candidate_ids, get_catalog
from proxy.gateway.errors import GatewayError
from proxy.gateway.http import Receive, Scope, Send, header, read_body, send_error, send_json
from proxy.gateway.shape import completion_body, new_generation_id, usage_json
from proxy.gateway.validate import ParsedRequest, parse_request
from proxy.health import get_health_store
from proxy.prefs import RoutingError, parse_provider_prefs, prefs_with_route
from proxy.providers import get_adapter
from proxy.providers.base import HttpCall, ProviderError, Target, hide_reasoning
from proxy.routing import Attempt, RouteRequest, route
from proxy.tokens import count_images, estimate_prompt_tokens, estimate_text_tokens
from proxy.transforms import middle_out
from proxy.transport import Timeouts, TransportError, transport

_rng = random.Random()  # noqa: S311  (load balancing, not security)


@dataclass(slots=True)
class Call:
    """Everything one admitted request carries from admission to settlement."""

    generation_id: str
    created: int
    t0: float  # perf_counter at arrival
    key: KeyRecord
    org: OrgContext
    req: ParsedRequest
    attempts: tuple[Attempt, ...]
    catalog: CatalogSnapshot
    prompt_tokens: int
    router: str
    http_referer: str
    app_title: str
    provider_responses: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False

    @property
    def key_state(self) -> KeyState:
        return self.key.state


@dataclass(slots=True)
class Outcome:
    """What an attempt produced, for billing and the generation record."""

    attempt: Attempt
    usage: Usage | None
    delivered_chars: int = 0
    has_output: bool = False
    finish_reason: str = ""
    native_finish_reason: str = ""
    upstream_id: str = ""
    ttft_ms: int | None = None
    streamed: bool = False
    cancelled: bool = False
    truncated: bool = False


def max_attempts() -> int:
    return int(getattr(settings, "GATEWAY_MAX_ATTEMPTS", 4))


async def admit(scope: Scope, receive: Receive, *, legacy: bool) -> Call:
    """Everything before the first upstream byte. Raises GatewayError for the client."""
    key = await authenticate(header(scope, b"authorization"))
    raw = await read_body(receive, settings.MAX_REQUEST_BYTES)
    req = parse_request(raw, legacy_completion=legacy)
    org, catalog = await org_context(key.state.org_id), await get_catalog()
    try:
        prefs = prefs_with_route(parse_provider_prefs(req.provider), req.route)
        prompt_tokens = estimate_prompt_tokens(req.body["messages"])
        if req.body.get("tools"):
            prompt_tokens += estimate_text_tokens(orjson.dumps(req.body["tools"]).decode())
        health = await get_health_store().view(candidate_ids(catalog, req.models))
        plan = route(
            RouteRequest(
                models=req.models,
                prefs=prefs,
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
            health,
            _rng,
        )
    except RoutingError as exc:
        retry_after = (exc.metadata or {}).get("retry_after")
        headers = {"Retry-After": str(math.ceil(float(retry_after)))} if retry_after else None
        raise GatewayError(exc.status, exc.message, exc.metadata, headers) from exc
    attempts = _usable(plan.attempts, catalog, org)[: max_attempts()]
    if not attempts:
        names = sorted({provider_env_prefix(a.candidate.provider_slug) + "_API_KEY" for a in plan.attempts})
        raise GatewayError(
            503,
            "No provider for this model has upstream credentials configured (set one of: " + ", ".join(names) + ")",
            {"error_type": "provider_unavailable"},
        )
    call = Call(
        generation_id=new_generation_id(),
        created=int(time.time()),
        t0=time.perf_counter(),
        key=key,
        org=org,
        req=req,
        attempts=attempts,
        catalog=catalog,
        prompt_tokens=prompt_tokens,
        router=plan.router or "",
        http_referer=header(scope, b"http-referer")[:500],
        app_title=(header(scope, b"x-openrouter-title") or header(scope, b"x-title"))[:200],
    )
    await _reserve(call)
    return call


def _usable(attempts: tuple[Attempt, ...], catalog: CatalogSnapshot, org: OrgContext) -> tuple[Attempt, ...]:
    """Attempts we can actually make: BYOK ones with the org's key, platform ones with configured credentials.

    A platform attempt is dropped when the organization has its own key for that provider and does
    not allow falling back to the platform's.
    """
    out = []
    for attempt in attempts:
        slug = attempt.candidate.provider_slug
        if attempt.candidate.is_byok:
            if slug in org.byok_keys:
                out.append(attempt)
        elif slug in catalog.configured and (slug not in org.byok_keys or org.allow_platform_fallback):
            out.append(attempt)
    return tuple(out)


def _worst_case(call: Call, candidate: Candidate) -> int:
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


_MODALITY_PARTS = {
    "image_url": "image",
    "input_audio": "audio",
    "video_url": "video",
    "input_video": "video",
    "file": "file",
}


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


async def _reserve(call: Call) -> None:
    """Hold the worst case of every attempt we might make, so failover can never overspend."""
    amount = max(_worst_case(call, a.candidate) for a in call.attempts)
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


def upstream_call(call: Call, attempt: Attempt, *, stream: bool) -> tuple[HttpCall, Timeouts]:
    candidate = attempt.candidate
    body = call.req.body
    if attempt.reasoning_default and "reasoning" not in body:
        body = {**body, "reasoning": {"enabled": True, "effort": None, "max_tokens": None, "exclude": False}}
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


def upstream_error(exc: ProviderError | TransportError, candidate: Candidate) -> GatewayError:
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


def note_attempt(call: Call, attempt: Attempt, status: int, started: float) -> None:
    call.provider_responses.append(
        {
            "provider_name": attempt.candidate.provider_name,
            "endpoint_tag": attempt.candidate.tag,
            "model_permaslug": attempt.model_slug,
            "status": status,
            "latency": int((time.perf_counter() - started) * 1000),
            "is_byok": attempt.candidate.is_byok,
        }
    )


async def record_health(
    attempt: Attempt, *, ok: bool, status: int, started: float, ttft_ms: int | None = None, tokens: int | None = None
) -> None:
    elapsed = (time.perf_counter() - started) * 1000
    await get_health_store().record(
        attempt.candidate.endpoint_id,
        ok=ok,
        rate_limited=status == 429,
        latency_ms=elapsed if ok else None,
        ttft_ms=ttft_ms,
        tokens=tokens,
        duration_ms=elapsed if ok else None,
    )


def final_usage(call: Call, outcome: Outcome) -> tuple[Usage, bool]:
    """The upstream's own counts when it gave them; an estimate from what was delivered otherwise."""
    reported = outcome.usage
    if reported is not None and not (outcome.cancelled or outcome.truncated):
        return reported, False
    estimated_completion = estimate_text_tokens("x" * outcome.delivered_chars) if outcome.delivered_chars else 0
    if reported is not None and reported.completion_tokens >= estimated_completion:
        return reported, False
    prompt = reported.prompt_tokens if reported is not None and reported.prompt_tokens else call.prompt_tokens
    return Usage(prompt_tokens=prompt, completion_tokens=estimated_completion), True


async def settle(call: Call, outcome: Outcome) -> tuple[dict[str, Any], int]:
    """Price the outcome, release the reservation and queue the usage event. Returns (usage JSON, charged)."""
    candidate = outcome.attempt.candidate
    usage, estimated = final_usage(call, outcome)
    # Zero-completion insurance: a request that produced nothing is not charged.
    produced = outcome.has_output or usage.completion_tokens > 0
    list_cost = cost_nanos(usage, candidate.price) if produced else 0
    now = time.perf_counter()
    event = UsageEvent(
        generation_id=call.generation_id,
        organization_id=call.key_state.org_id,
        api_key_id=call.key_state.key_id,
        key_hash=call.key_state.key_hash,
        user_id=call.key_state.user_id,
        model=outcome.attempt.model_slug,
        provider_slug=candidate.provider_slug,
        provider_name=candidate.provider_name,
        endpoint_tag=candidate.tag,
        created_at=float(call.created),
        upstream_id=outcome.upstream_id,
        api_type="completions",
        router=call.router,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        images=count_images(call.req.body["messages"]),
        usage_estimated=estimated,
        list_cost_nanos=list_cost,
        is_byok=candidate.is_byok,
        latency_ms=int((now - call.t0) * 1000),
        ttft_ms=outcome.ttft_ms,
        generation_time_ms=int((now - call.t0) * 1000) - (outcome.ttft_ms or 0),
        finish_reason=outcome.finish_reason,
        native_finish_reason=outcome.native_finish_reason,
        streamed=outcome.streamed,
        cancelled=outcome.cancelled,
        http_referer=call.http_referer,
        app_title=call.app_title,
        external_user=call.req.user[:256],
        provider_responses=call.provider_responses,
    )
    call.finished = True
    charged = await get_gate().finish(reservation_id=call.generation_id, key=call.key_state, event=event)
    return usage_json(usage, cost_nanos=charged, list_cost_nanos=list_cost, is_byok=candidate.is_byok), charged


async def release(call: Call) -> None:
    """Nothing to bill (every attempt failed before producing anything): just drop the hold."""
    if not call.finished:
        call.finished = True
        await get_gate().finish(reservation_id=call.generation_id, key=call.key_state, event=None)


def response_headers(call: Call, attempt: Attempt | None = None) -> dict[str, str]:
    headers = {"X-Generation-Id": call.generation_id}
    if attempt is not None:
        headers["X-OpenRouter-Provider"] = attempt.candidate.provider_name
    return headers


async def run_once(call: Call, send: Send) -> None:
    """Non-streaming: try attempts in order until one answers; failover only on retryable errors."""
    last: GatewayError | None = None
    for index, attempt in enumerate(call.attempts):
        started = time.perf_counter()
        adapter = get_adapter(attempt.candidate.adapter)
        try:
            http_call, timeouts = upstream_call(call, attempt, stream=False)
            response = await transport.post(http_call, timeouts)
            body = await response.read()
            if response.status >= 400:
                raise adapter.map_error(response.status, response.headers, body)
            parsed = adapter.parse_response(body)
        except (ProviderError, TransportError) as exc:
            status = (exc.upstream_status or exc.status) if isinstance(exc, ProviderError) else 0
            note_attempt(call, attempt, status, started)
            await record_health(attempt, ok=False, status=status, started=started)
            last = upstream_error(exc, attempt.candidate)
            retryable = not isinstance(exc, ProviderError) or exc.retryable
            if retryable and index + 1 < len(call.attempts):
                continue
            break
        note_attempt(call, attempt, 200, started)
        choice = parsed.choices[0] if parsed.choices else {}
        message = choice.get("message") or {}
        if call.req.body.get("reasoning", {}).get("exclude"):
            for c in parsed.choices:
                hide_reasoning(c)
        outcome = Outcome(
            attempt=attempt,
            usage=parsed.usage,
            delivered_chars=len(message.get("content") or ""),
            has_output=bool(message.get("content") or message.get("tool_calls") or message.get("reasoning")),
            finish_reason=choice.get("finish_reason") or "",
            native_finish_reason=choice.get("native_finish_reason") or "",
            upstream_id=parsed.upstream_id,
        )
        usage, _ = await settle(call, outcome)
        payload = completion_body(
            generation_id=call.generation_id,
            created=call.created,
            model=attempt.model_slug,
            provider_name=attempt.candidate.provider_name,
            choices=parsed.choices,
            usage=usage,
            system_fingerprint=parsed.system_fingerprint,
            legacy=call.req.legacy_completion,
        )
        await send_json(send, 200, payload, response_headers(call, attempt))
        await record_health(attempt, ok=True, status=200, started=started, tokens=usage["completion_tokens"])
        return
    await release(call)
    assert last is not None
    last.headers.update(response_headers(call))
    await send_error(send, last)
