"""A provider's circuit breaker judges the provider, not the tenant whose requests fail there.

Issue: five requests from one organization that the upstream answered 500 opened the breaker, and
another organization's requests pinned to that provider got 503 for the cool-down.
"""

from __future__ import annotations

import asyncio

import httpx
from pytest_django.fixtures import Settings

from billing.services import credits_grant
from organizations.services import api_key_create, organization_create
from proxy.health import get_health_store
from proxy.models import Endpoint
from tests.e2e.support import GRANT_NANOS, World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client

BODY = {"model": "mock-openai/ok", "messages": MESSAGES, "provider": {"allow_fallbacks": False}}


def _fail_next(mock: MockProvider, n: int) -> None:
    scenario = {"fail_first": n, "fail_status": 500}
    res = httpx.post(f"{mock.url}/_control", json={"model": "mock-ok", "scenario": scenario})
    res.raise_for_status()


def _other_org_key(world: World) -> str:
    org = organization_create(name="Tenant B", owner=world.owner)
    credits_grant(organization=org, amount_nanos=GRANT_NANOS, reason="test credit")
    return api_key_create(organization=org, name="b", created_by=world.owner).key


def _post_all(key: str, times: int) -> list[int]:
    async def main() -> list[int]:
        async with asgi_client(key) as client:
            return [(await client.post(PATH, json=BODY)).status_code for _ in range(times)]

    return asyncio.run(main())


def _circuit_open(endpoint_id: int) -> bool:
    async def main() -> bool:
        return (await get_health_store().view([endpoint_id])).get(endpoint_id).circuit_open

    return asyncio.run(main())


def test_one_tenants_upstream_failures_leave_the_provider_open_to_others(
    live: World, mock_provider: MockProvider, settings: Settings
) -> None:
    endpoint = Endpoint.objects.get(model__slug="mock-openai/ok")
    key_b = _other_org_key(live)
    failures = settings.HEALTH_CB_FAILURES * 2
    _fail_next(mock_provider, failures)

    assert set(_post_all(key_b, failures)) == {502}
    assert not _circuit_open(endpoint.pk)
    # Organization A, pinned to the same provider, is served.
    assert _post_all(live.key.key, 1) == [200]


def test_failures_across_organizations_open_it(live: World, mock_provider: MockProvider, settings: Settings) -> None:
    endpoint = Endpoint.objects.get(model__slug="mock-openai/ok")
    key_b = _other_org_key(live)
    _fail_next(mock_provider, settings.HEALTH_CB_FAILURES + 1)

    _post_all(key_b, settings.HEALTH_CB_FAILURES)
    _post_all(live.key.key, 1)
    assert _circuit_open(endpoint.pk)
    assert _post_all(live.key.key, 1) == [503]
