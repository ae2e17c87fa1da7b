"""200 concurrent streaming requests through three real gateway processes, credit for 20 of them.

Nothing is overspent, every refusal is a 402 in the error envelope before anything streams, and the
ledger is clean after settlement. Uses the e2e harness (uvicorn subprocesses, the mock provider).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command

from billing.gate import RedisGate, keys
from billing.ledger import org_balance_nanos
from billing.models import Generation
from billing.pricing import worst_case_nanos
from billing.services import credits_grant
from billing.settlement import settle_pending
from organizations.services import api_key_create, organization_create
from proxy.tokens import estimate_prompt_tokens
from tests.e2e import support as e2e
from tests.e2e.support import PRICE, Gateway, World, gateway_env, running_gateway
from tests.mockprovider import MockProvider
from tests.mockprovider.sse import parse_sse

# The e2e harness's fixtures, used here by name.
_mock_server, mock_provider, world = e2e._mock_server, e2e.mock_provider, e2e.world

GATEWAYS = 3
REQUESTS = 200
AFFORDABLE = 20
MAX_TOKENS = 1000
MESSAGES = [{"role": "user", "content": "Count slowly to twenty."}]
MODEL = "mock-openai/slow-chunks-200"  # 20 chunks, 200 ms apart: every admitted stream is in flight at once


@pytest.fixture
def gateways(world: World, mock_provider: MockProvider, tmp_path: Path) -> Iterator[list[Gateway]]:
    env = gateway_env(world, mock_provider)
    with ExitStack() as stack:
        yield [stack.enter_context(running_gateway(env, tmp_path / f"gateway-{i}.log")) for i in range(GATEWAYS)]


async def _stream(client: httpx.AsyncClient, url: str, key: str) -> tuple[int, Any]:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True}
    async with client.stream(
        "POST", f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as res:
        text = (await res.aread()).decode()
    if res.status_code != 200:
        return res.status_code, httpx.Response(res.status_code, content=text).json()
    return 200, parse_sse(text)


async def _fire(gateways: list[Gateway], key: str) -> list[tuple[int, Any]]:
    limits = httpx.Limits(max_connections=REQUESTS + 10, max_keepalive_connections=REQUESTS + 10)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        jobs = [_stream(client, gateways[i % GATEWAYS].api_url, key) for i in range(REQUESTS)]
        return list(await asyncio.gather(*jobs))


@pytest.mark.e2e
def test_it_never_overspends_under_200_concurrent_streams_across_gateway_processes(
    world: World, gateways: list[Gateway]
) -> None:
    worst = worst_case_nanos(
        prompt_tokens=estimate_prompt_tokens(MESSAGES), max_completion_tokens=MAX_TOKENS, price=PRICE
    )
    credit = AFFORDABLE * worst
    org = organization_create(name="Twenty", owner=world.owner)
    credits_grant(organization=org, amount_nanos=credit, reason="covers twenty worst cases")
    key = api_key_create(organization=org, name="twenty", created_by=world.owner)

    results = asyncio.run(_fire(gateways, key.key))

    admitted = [body for status, body in results if status == 200]
    refused = [(status, body) for status, body in results if status != 200]
    assert len(admitted) >= 1 and len(admitted) + len(refused) == REQUESTS
    assert all(stream.done for stream in admitted)  # every admitted stream ran to [DONE]
    assert all(status == 402 and body["error"]["code"] == 402 for status, body in refused), refused[:3]

    gate = RedisGate(settings.REDIS_URL)
    for _ in range(50):
        settle_pending()
        queued = sum(gate.sync.xlen(s) for s in keys.streams())
        if queued == 0 and Generation.objects.filter(organization=org).count() == len(admitted):
            break
    view = gate.org_credit_view(org.pk)
    assert view["spent"] <= credit  # overspend 0
    assert view["reserved"] == 0 and view["unsettled"] == 0
    assert Generation.objects.filter(organization=org).count() == len(admitted)
    assert org_balance_nanos(org) == credit - view["spent"]
    call_command("ledger_verify")
