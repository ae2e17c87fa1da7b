"""Holds are a true upper bound (issue 11, cases 2 and 8), through the in-process gateway.

200 concurrent requests whose provider counts twice the prompt tokens routing estimates, against
credit for about 50 holds: the organization never goes below zero, a limited key never passes its
limit, and since the bound really is an upper bound, every client is billed its full usage (no
charge had to be capped, nothing went to the loss account).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from django.conf import settings as conf
from django.core.management import call_command

from billing.gate import get_gate, key_usage_nanos, org_credit_view
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount
from billing.services import credits_grant
from billing.settlement import settle_pending
from organizations.services import api_key_create, organization_create
from proxy.tokens import estimate_prompt_tokens, prompt_tokens_bound
from tests.e2e.support import COMPLETION_NANOS_PER_MTOK, PROMPT_NANOS_PER_MTOK, World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import PATH, asgi_client, stream, streamed_text

MODEL = "mock-openai/ok"
PROMPT = [{"role": "user", "content": "a " * 4000}]
CONTEXT = 8192  # the e2e catalog's context length


def nanos(prompt_tokens: int, completion_tokens: int) -> int:
    return (prompt_tokens * PROMPT_NANOS_PER_MTOK + completion_tokens * COMPLETION_NANOS_PER_MTOK) // 1_000_000


def test_the_bound_covers_bytes_and_allowances_and_routing_keeps_its_estimate() -> None:
    body: dict[str, Any] = {"messages": PROMPT}
    estimate = estimate_prompt_tokens(PROMPT)
    assert estimate == 2004
    assert prompt_tokens_bound(body) >= 8000 > 2 * estimate  # one token per byte at most, plus framing
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert prompt_tokens_bound({**body, "tools": tools}) > prompt_tokens_bound(body)
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:" + "A" * 10}}]}]
    assert prompt_tokens_bound({"messages": image}) >= 16_384


def test_concurrent_requests_never_overspend_when_the_provider_counts_more(
    live: World, mock_provider: MockProvider
) -> None:
    reported_prompt = 2 * estimate_prompt_tokens(PROMPT)  # the provider counts twice the old estimate
    # Every request is admitted before the first one finishes: the holds, not the charges, decide.
    # (The delay must outlast admitting all 200 on a loaded machine: 1.5 s did not, under CI-like load.)
    mock_provider.set_scenario("mock-ok", prompt_tokens=reported_prompt, chunks=1, first_byte_delay_ms=5000)
    hold = nanos(min(prompt_tokens_bound({"messages": PROMPT}), CONTEXT), 1)
    owner = live.owner
    org = organization_create(name="Bounded", owner=owner)
    credits_grant(organization=org, amount_nanos=50 * hold, reason="fifty holds")
    limited = api_key_create(organization=org, name="limited", created_by=owner, limit_nanos=10 * hold)
    open_key = api_key_create(organization=org, name="open", created_by=owner)

    async def main() -> list[httpx.Response]:
        async with asgi_client(None) as client:

            async def one(key: str) -> httpx.Response:
                body = {"model": MODEL, "messages": PROMPT, "max_tokens": 1}
                return await client.post(PATH, json=body, headers={"Authorization": f"Bearer {key}"})

            keys = [limited.key, open_key.key] * 100
            return await asyncio.gather(*(one(k) for k in keys))

    responses = asyncio.run(main())
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {200, 402}, statuses
    served = sum(r.status_code == 200 for r in responses)
    assert 0 < served <= 50
    settle_pending(get_gate().queue())

    assert Generation.objects.filter(organization=org).count() == served
    billed = nanos(reported_prompt, 1)
    # Billed in full: the provider's count was inside the hold, so no charge was capped.
    assert set(Generation.objects.filter(organization=org).values_list("cost_nanos", "list_cost_nanos")) == {
        (billed, billed)
    }
    assert not LedgerAccount.objects.filter(kind=LedgerAccount.Kind.USAGE_LOSS, balance_nanos__lt=0).exists()
    assert org_balance_nanos(org) >= 0
    view = org_credit_view(org.pk)
    assert view["credits"] - view["spent"] >= 0 and view["reserved"] == 0
    k = limited.api_key
    assert key_usage_nanos(k.pk, k.hash, k.organization_id)["total"] <= 10 * hold
    assert conf.REDIS_URL
    call_command("ledger_verify")


def test_a_non_streaming_answer_past_its_hold_is_charged_the_hold_and_the_rest_is_a_loss(
    live: World, mock_provider: MockProvider
) -> None:
    """Case 8: the upstream ignores max_tokens and sends 200 tokens; the client pays at most the hold."""
    mock_provider.set_scenario("mock-ok", chunks=200)

    async def main() -> httpx.Response:
        async with asgi_client(live.key.key) as client:
            return await client.post(
                PATH, json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
            )

    res = asyncio.run(main())
    assert res.status_code == 200
    settle_pending(get_gate().queue())
    gen = Generation.objects.get(organization=live.org)
    hold = nanos(min(prompt_tokens_bound({"messages": [{"role": "user", "content": "hi"}]}), CONTEXT), 5)
    assert gen.list_cost_nanos == nanos(17, 200) > hold
    assert gen.cost_nanos == hold
    loss = LedgerAccount.objects.get(kind=LedgerAccount.Kind.USAGE_LOSS, organization=None)
    assert loss.balance_nanos == -(gen.list_cost_nanos - hold)
    revenue = LedgerAccount.objects.get(kind=LedgerAccount.Kind.USAGE_REVENUE, organization=None)
    assert revenue.balance_nanos == gen.list_cost_nanos
    call_command("ledger_verify")


def test_a_stream_past_its_bound_is_stopped_at_it_with_finish_reason_length(
    live: World, mock_provider: MockProvider
) -> None:
    """Case 8, streaming: the upstream ignores max_tokens 5 and would send 200 pieces over 4 s."""
    mock_provider.set_scenario("mock-ok", chunks=200, chunk_delay_ms=20)
    hi = [{"role": "user", "content": "hi"}]

    async def main() -> tuple[httpx.Response, Any]:
        async with asgi_client(live.key.key) as client:
            return await stream(client, {"model": MODEL, "messages": hi, "max_tokens": 5})

    started = time.monotonic()
    res, events = asyncio.run(main())
    assert res.status_code == 200
    assert time.monotonic() - started < 3  # the upstream was cut, not drained
    assert streamed_text(events) == "t0 t1 t2 t3 t4"
    reasons = [c.get("finish_reason") for d in events.data() for c in d.get("choices", ()) if c.get("finish_reason")]
    assert reasons == ["length"]
    assert events.data()[-1]["usage"]["completion_tokens"] <= 5
    settle_pending(get_gate().queue())
    gen = Generation.objects.get(organization=live.org)
    assert gen.finish_reason == "length"
    assert gen.cost_nanos <= nanos(min(prompt_tokens_bound({"messages": hi}), CONTEXT), 5)
    call_command("ledger_verify")
