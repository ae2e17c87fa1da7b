"""POST /api/v1/embeddings: the same key, routing, credit hold and settlement as chat, one JSON answer.

Served by the gateway's ASGI handler like completions (hot path, async, no Django). The flow mirrors
chat's: authenticate, validate, route the model to its endpoints, hold the worst case of every
attempt, try them in order (failover on retryable errors), then settle what the host reported with
`api_type: "embeddings"` on the generation. Embeddings have no output tokens: the worst case is the
prompt bound at the input price (plus any per-request fee).

Upstreams are called through the OpenAI embeddings dialect, which OpenAI and every compatible host
(vLLM, Ollama, Together, DeepInfra...) speak, or Gemini's embedContent/batchEmbedContents (text
input only); endpoints on other adapters are not tried.
"""

from __future__ import annotations

import base64
import logging
import random
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from billing.gate import get_gate
from billing.pricing import Usage, cost_nanos, worst_case_nanos
from billing.usage import UsageEvent
from common.money import nanos_to_usd_number
from proxy.catalog.snapshot import CatalogSnapshot
from proxy.gateway.attempts import within_budget
from proxy.gateway.auth import KeyRecord, OrgContext, authenticate, org_context
from proxy.gateway.catalog import get_catalog
from proxy.gateway.errors import GatewayError
from proxy.gateway.http import ClientDisconnected, Receive, Scope, Send, header, read_body, send_error, send_json
from proxy.gateway.policy import enforce_plan, enforce_request, explain
from proxy.gateway.shape import new_generation_id, usage_json
from proxy.gateway.upstream import UpstreamFailure, failure_status, retryable, upstream_error
from proxy.gateway.validate import parse_json
from proxy.health import get_health_store
from proxy.providers import get_adapter
from proxy.providers import openai as openai_embeddings
from proxy.providers.base import ProviderError, Target
from proxy.providers.gemini import embeddings as gemini_embeddings
from proxy.routing import Attempt, RouteRequest, RoutingError, parse_provider_prefs, plan, resolve
from proxy.tokens import estimate_text_tokens
from proxy.transport import Timeouts, TransportError, transport

logger = logging.getLogger("proxy.gateway")
_rng = random.Random()  # noqa: S311  (load balancing, not security)
ENCODINGS = ("float", "base64")
EMBEDDING_ADAPTERS = frozenset({"openai", "gemini"})
TEXT_ONLY_ADAPTERS = frozenset({"gemini"})  # no token-array input


@dataclass(slots=True)
class EmbeddingsCall:
    generation_id: str
    created: int
    t0: float
    key: KeyRecord
    org: OrgContext
    catalog: CatalogSnapshot
    body: dict[str, Any]
    prompt_tokens: int  # routing's estimate; billed only when the host reports nothing
    attempts: tuple[Attempt, ...]
    http_referer: str
    app_title: str
    provider_responses: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


def parse_embeddings_body(raw: bytes) -> dict[str, Any]:
    """The request, checked: `input` a string, strings, a token array or token arrays (never empty)."""
    body = parse_json(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise GatewayError(400, "model is required")
    if not _valid_input(body.get("input")):
        raise GatewayError(
            400, "input must be a non-empty string, a list of strings, a token array or a list of token arrays"
        )
    body["input"] = _normalized(body["input"])
    if body.get("encoding_format") not in (None, *ENCODINGS):
        raise GatewayError(400, "encoding_format must be float or base64")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise GatewayError(400, "dimensions must be a positive integer")
    for name in ("input_type", "user"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise GatewayError(400, f"{name} must be a string")
    return body


def _is_token(t: Any) -> bool:
    # OpenRouter's own SDK types token ids as numbers and sends 1.0 for 1: whole floats are token ids too.
    return (isinstance(t, int) and not isinstance(t, bool)) or (isinstance(t, float) and t.is_integer() and t >= 0)


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_token(t) for t in value)


def _normalized(value: Any) -> Any:
    """Token ids as ints, whatever number type they came as (upstreams want integers)."""
    if _is_tokens(value):
        return [int(t) for t in value]
    if isinstance(value, list) and all(_is_tokens(v) for v in value):
        return [[int(t) for t in v] for v in value]
    return value


def _valid_input(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(v, str) and v for v in value) or _is_tokens(value) or all(_is_tokens(v) for v in value)


def _inputs(value: Any) -> list[str | list[int]]:
    if isinstance(value, str) or _is_tokens(value):
        return [value]
    return list(value)


def prompt_tokens_estimate(value: Any) -> int:
    return sum(len(i) if isinstance(i, list) else estimate_text_tokens(i) for i in _inputs(value))


def prompt_tokens_bound(value: Any) -> int:
    """No tokenizer makes more tokens than UTF-8 bytes, plus a few special tokens per input: the hold covers it."""
    return sum(len(i) if isinstance(i, list) else len(i.encode()) + 4 for i in _inputs(value))


async def admit_embeddings(scope: Scope, receive: Receive) -> EmbeddingsCall:
    key = await authenticate(header(scope, b"authorization"))
    body = parse_embeddings_body(await read_body(receive, settings.MAX_REQUEST_BYTES))
    org, catalog = await org_context(key.state.org_id), await get_catalog()
    estimate = prompt_tokens_estimate(body["input"])
    try:
        # The organization's data policy and the key's model restriction apply here too (gateway/policy.py).
        route_request = enforce_request(
            RouteRequest(
                models=(body["model"].strip(),),
                prefs=parse_provider_prefs(body.get("provider")),
                prompt_tokens=estimate,
                byok_providers=frozenset(org.byok_keys),
            ),
            org.policy,
            key.allowed_models,
        )
        resolved = resolve(route_request, catalog, _rng)
        routed = plan(resolved, await get_health_store().view(resolved.endpoint_ids), _rng)
        routed = enforce_plan(routed, org.policy, key.allowed_models)
    except RoutingError as raised:
        exc = explain(raised, org.policy)
        raise GatewayError(exc.status, exc.message, exc.metadata) from exc
    tokens_in = not isinstance(body["input"], str) and not all(isinstance(i, str) for i in body["input"])
    adapters = EMBEDDING_ADAPTERS - TEXT_ONLY_ADAPTERS if tokens_in else EMBEDDING_ADAPTERS
    attempts = tuple(a for a in routed.attempts if a.candidate.adapter in adapters)
    if not attempts:
        raise GatewayError(404, f"No endpoints found that serve embeddings for {body['model']}")
    call = EmbeddingsCall(
        generation_id=new_generation_id(),
        created=int(time.time()),
        t0=time.perf_counter(),
        key=key,
        org=org,
        catalog=catalog,
        body=body,
        prompt_tokens=estimate,
        attempts=within_budget(attempts),
        http_referer=header(scope, b"http-referer")[:500],
        app_title=(header(scope, b"x-openrouter-title") or header(scope, b"x-title"))[:200],
    )
    bound = prompt_tokens_bound(body["input"])
    amount = max(
        worst_case_nanos(prompt_tokens=bound, max_completion_tokens=0, price=a.candidate.price) for a in call.attempts
    )
    admission = await get_gate().admit(
        reservation_id=call.generation_id,
        key=key.state,
        amount_nanos=amount,
        is_free=all(a.candidate.variant == "free" for a in call.attempts),
        is_byok=all(a.candidate.is_byok for a in call.attempts),
    )
    if not admission.ok:
        headers = dict(admission.headers)
        if admission.retry_after is not None:
            headers["Retry-After"] = str(admission.retry_after)
        raise GatewayError(admission.status, admission.message, admission.metadata, headers)
    return call


def _as_base64(embedding: Any) -> Any:
    """OpenAI's base64 encoding: little-endian float32s. Hosts that ignored the request get converted."""
    if isinstance(embedding, list):
        return base64.b64encode(struct.pack(f"<{len(embedding)}f", *embedding)).decode()
    return embedding


async def _attempt(call: EmbeddingsCall, attempt: Attempt) -> dict[str, Any]:
    candidate = attempt.candidate
    own_key = call.org.byok_keys.get(candidate.provider_slug) if candidate.is_byok else None
    target = Target(
        base_url=candidate.base_url,
        api_key=own_key or call.catalog.platform_keys.get(candidate.provider_slug, ""),
        upstream_model=candidate.upstream_model,
        provider_slug=candidate.provider_slug,
    )
    timeouts = Timeouts(
        connect_s=candidate.connect_timeout_ms / 1000,
        first_byte_s=candidate.first_byte_timeout_ms / 1000,
        idle_s=candidate.idle_timeout_ms / 1000,
    )
    dialect = gemini_embeddings if candidate.adapter == "gemini" else openai_embeddings
    response = await transport.post(dialect.build_embeddings_request(call.body, target), timeouts)
    raw = await response.read()
    if response.status >= 400:
        raise get_adapter(candidate.adapter).map_error(response.status, response.headers, raw)
    parsed = dialect.parse_embeddings_response(raw)
    _note(call, attempt, 200)
    reported = parsed.prompt_tokens
    usage = Usage(prompt_tokens=reported if reported is not None else call.prompt_tokens)
    list_cost = cost_nanos(usage, candidate.price)
    now = time.perf_counter()
    event = UsageEvent(
        generation_id=call.generation_id,
        organization_id=call.key.state.org_id,
        api_key_id=call.key.state.key_id,
        key_hash=call.key.state.key_hash,
        user_id=call.key.state.user_id,
        model=attempt.model_slug,
        provider_slug=candidate.provider_slug,
        provider_name=candidate.provider_name,
        endpoint_tag=candidate.tag,
        created_at=float(call.created),
        api_type="embeddings",
        prompt_tokens=usage.prompt_tokens,
        usage_estimated=reported is None,
        list_cost_nanos=list_cost,
        is_byok=candidate.is_byok,
        latency_ms=int((now - call.t0) * 1000),
        generation_time_ms=int((now - call.t0) * 1000),
        finish_reason="stop",
        native_finish_reason="stop",
        http_referer=call.http_referer,
        app_title=call.app_title,
        external_user=str(call.body.get("user") or "")[:256],
        provider_responses=call.provider_responses,
    )
    call.finished = True
    charged = await get_gate().finish(reservation_id=call.generation_id, key=call.key.state, event=event)
    data = parsed.data
    if call.body.get("encoding_format") == "base64":
        data = [{**item, "embedding": _as_base64(item["embedding"])} for item in data]
    usage_out = usage_json(
        usage, cost_nanos=charged, list_cost_nanos=list_cost, is_byok=candidate.is_byok, price=candidate.price
    )
    return {
        "id": call.generation_id,
        "object": "list",
        "data": data,
        "model": attempt.model_slug,
        "provider": candidate.provider_name,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.prompt_tokens,
            "cost": nanos_to_usd_number(charged),
            "is_byok": candidate.is_byok,
            "cost_details": usage_out["cost_details"],
        },
    }


def _note(call: EmbeddingsCall, attempt: Attempt, status: int) -> None:
    call.provider_responses.append(
        {
            "provider_name": attempt.candidate.provider_name,
            "endpoint_tag": attempt.candidate.tag,
            "model_permaslug": attempt.model_slug,
            "status": status,
            "is_byok": attempt.candidate.is_byok,
        }
    )


async def _release(call: EmbeddingsCall) -> None:
    if not call.finished:
        call.finished = True
        await get_gate().finish(reservation_id=call.generation_id, key=call.key.state, event=None)


async def run_embeddings(call: EmbeddingsCall, send: Send) -> None:
    headers = {"X-Generation-Id": call.generation_id}
    failure: tuple[UpstreamFailure, Attempt] | None = None
    for index, attempt in enumerate(call.attempts):
        try:
            payload = await _attempt(call, attempt)
        except (ProviderError, TransportError) as exc:
            _note(call, attempt, failure_status(exc))
            failure = (exc, attempt)
            if retryable(exc) and index + 1 < len(call.attempts):
                continue
            break
        headers["X-OpenRouter-Provider"] = attempt.candidate.provider_name
        await send_json(send, 200, payload, headers)
        return
    await _release(call)
    assert failure is not None  # admission refuses a request with nothing to try
    error = upstream_error(failure[0], failure[1].candidate)
    error.headers.update(headers)
    await send_error(send, error)


async def handle_embeddings(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "POST":
        await send_error(send, GatewayError(405, "Method not allowed; use POST"))
        return
    try:
        call = await admit_embeddings(scope, receive)
    except GatewayError as exc:
        await send_error(send, exc)
        return
    except ClientDisconnected:
        return
    try:
        await run_embeddings(call, send)
    except Exception:
        logger.exception("embeddings %s failed", call.generation_id)
        await _release(call)
        await send_error(send, GatewayError(500, "Internal error"))
