"""Settlement: the usage to bill, one gate call that releases the hold and queues the usage event,
and the `usage` object the client sees. Nothing here writes to the database: Celery workers turn the
queued event into `billing.Generation` and the ledger entry."""

from __future__ import annotations

import time
from typing import Any

from billing.gate import get_gate
from billing.pricing import PriceCard, Usage, cost_nanos
from billing.usage import UsageEvent
from common.money import nanos_to_usd_number
from proxy.gateway import metrics, tracing
from proxy.gateway.call import Call, Outcome
from proxy.gateway.prompt_log import sealed_record
from proxy.gateway.shape import usage_json
from proxy.routing.filters import tier_of
from proxy.tokens import count_images, estimate_text_tokens


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
    price = served_price(call, outcome)
    usage, estimated = final_usage(call, outcome)
    # Zero-completion insurance: a request that produced nothing is not charged.
    produced = outcome.has_output or usage.completion_tokens > 0
    model_cost = cost_nanos(usage, price) if produced else 0
    # The web plugin's search fee stays even when insurance zeroes the model's part (contract 10).
    searched = call.web if call.web is not None and call.web.searched else None
    search_cost = searched.cost_nanos if searched is not None else 0
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
        list_cost_nanos=model_cost,
        plugin_cost_nanos=search_cost,
        web_search_engine=searched.engine if searched is not None else "",
        search_results=len(searched.results) if searched is not None else None,
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
        # Sealed (encrypted) here, before the event leaves the process; nothing at all when off.
        prompt_log=sealed_record(call, outcome) if call.org.log_prompts else "",
    )
    call.finished = True
    metrics.first_token(candidate.provider_name, outcome.ttft_ms)
    with tracing.phase_span("settle"):
        charged = await get_gate().finish(reservation_id=call.generation_id, key=call.key_state, event=event)
    if tracing.on():  # the attributes are not even built when tracing is off
        tracing.describe_request(
            {
                "gen_ai.request.model": call.req.models[0] if call.req.models else None,
                "gen_ai.request.max_tokens": call.req.max_tokens,
                "gen_ai.response.id": call.generation_id,
                "gen_ai.response.model": outcome.attempt.model_slug,
                "gen_ai.provider.name": candidate.provider_name,
                "gen_ai.response.finish_reasons": [outcome.finish_reason] if outcome.finish_reason else None,
                "gen_ai.usage.input_tokens": usage.prompt_tokens,
                "gen_ai.usage.output_tokens": usage.completion_tokens,
                "openrouter.cost_nanos": charged,
            }
        )
    usage_out = usage_json(
        usage, cost_nanos=charged, list_cost_nanos=model_cost, is_byok=candidate.is_byok, price=price
    )
    if searched is not None:
        usage_out["server_tool_use"] = {"web_search_requests": 1}
        usage_out["cost_details"]["web_search_cost"] = nanos_to_usd_number(search_cost)
    return usage_out, charged


def served_price(call: Call, outcome: Outcome) -> PriceCard:
    """The price of the tier the upstream says it served (contract 10.4), noted on the generation record.

    The request sent asks for the attempted endpoint's own tier (upstream.py), so they normally agree;
    when the provider reports another tier anyway we bill what it served: the same provider's endpoint
    for this model in that tier, or the attempted endpoint's price when the catalog has no such endpoint.
    """
    candidate = outcome.attempt.candidate
    reported = outcome.service_tier
    if reported is None:
        return candidate.price
    if call.provider_responses:  # the serving attempt's record, appended by Try.answered()
        call.provider_responses[-1]["routed_service_tier"] = reported
    if reported not in _PRICED_TIERS:  # a tier name we do not price: the endpoint's own price
        return candidate.price
    served = _PRICED_TIERS[reported]
    if served == tier_of(candidate):
        return candidate.price
    info = call.catalog.get(outcome.attempt.model_slug)
    for sibling in info.candidates if info is not None else ():
        if sibling.provider_slug == candidate.provider_slug and tier_of(sibling) == served:
            return sibling.price
    return candidate.price


# What providers report -> the catalog tier priced for it (None: the standard endpoint).
_PRICED_TIERS: dict[str, str | None] = {
    "priority": "priority",
    "fast": "priority",
    "flex": "flex",
    "default": None,
    "standard": None,
    "auto": None,
}


async def release(call: Call) -> None:
    """Nothing to bill (every attempt failed before producing anything): just drop the hold."""
    if not call.finished:
        call.finished = True
        await get_gate().finish(reservation_id=call.generation_id, key=call.key_state, event=None)
