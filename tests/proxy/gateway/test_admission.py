"""Admission in process: every refusal is the error envelope with the real status, before any upstream call."""

from __future__ import annotations

import asyncio

import httpx
from django.conf import settings as conf
from pytest_django.fixtures import Settings

from billing.gate import org_credit_view
from tests.e2e.support import World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client, open_circuit


def post(key: str | None, body: dict[str, object] | bytes) -> httpx.Response:
    async def main() -> httpx.Response:
        async with asgi_client(key) as client:
            if isinstance(body, bytes):
                return await client.post(PATH, content=body, headers={"Content-Type": "application/json"})
            return await client.post(PATH, json=body)

    return asyncio.run(main())


def test_an_unknown_key_is_401(live: World, mock_provider: MockProvider) -> None:
    res = post("sk-or-v1-" + "0" * 64, {"model": "mock-openai/ok", "messages": MESSAGES})
    assert res.status_code == 401
    assert res.json()["error"] == {"code": 401, "message": "User not found.", "metadata": None}
    assert mock_provider.requests == []


def test_an_org_without_credit_is_402_and_holds_nothing(live: World, mock_provider: MockProvider) -> None:
    res = post(live.broke_key.key, {"model": "mock-openai/ok", "messages": MESSAGES})
    assert res.status_code == 402
    assert res.json()["error"]["code"] == 402
    assert mock_provider.requests == []
    assert org_credit_view(live.broke_org.pk)["reserved"] == 0


def test_a_malformed_or_incomplete_body_is_400(live: World, mock_provider: MockProvider) -> None:
    assert post(live.key.key, b"{not json").status_code == 400
    missing = post(live.key.key, {"model": "mock-openai/ok"})
    assert missing.status_code == 400
    assert "messages" in missing.json()["error"]["message"]
    assert mock_provider.requests == []
    assert org_credit_view(live.org.pk)["reserved"] == 0


def test_a_model_whose_only_endpoint_is_open_is_503_with_retry_after(live: World, mock_provider: MockProvider) -> None:
    endpoint = live.providers["mock-openai"].endpoints.get(model__slug="mock-openai/ok")

    async def main() -> httpx.Response:
        async with asgi_client(live.key.key) as client:
            await open_circuit(endpoint.pk, conf.HEALTH_CB_FAILURES)
            return await client.post(PATH, json={"model": "mock-openai/ok", "messages": MESSAGES})

    res = asyncio.run(main())
    assert res.status_code == 503
    assert res.json()["error"]["metadata"]["error_type"] == "provider_overloaded"
    assert 0 < int(res.headers["retry-after"]) <= conf.HEALTH_CB_COOLDOWN_S
    assert mock_provider.requests == []


def test_a_provider_without_credentials_is_503_naming_the_variable(
    live: World, mock_provider: MockProvider, settings: Settings
) -> None:
    settings.PROVIDER_ENV = {}
    res = post(live.key.key, {"model": "mock-openai/ok", "messages": MESSAGES})
    assert res.status_code == 503
    assert "MOCK_OPENAI_API_KEY" in res.json()["error"]["message"]
    assert mock_provider.requests == []
