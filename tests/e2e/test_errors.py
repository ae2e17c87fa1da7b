"""Errors the client sees before anything reaches a provider: the OpenRouter envelope with the real status."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.e2e.support import GRANT_NANOS, Gateway, World
from tests.mockprovider import MockProvider

pytestmark = pytest.mark.e2e

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]


def post(gateway: Gateway, key: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{gateway.api_url}/chat/completions", headers=headers, json=body, timeout=30)


def test_it_refuses_a_missing_key_with_401(gateway: Gateway, mock_provider: MockProvider) -> None:
    res = post(gateway, None, {"model": "mock-openai/ok", "messages": MESSAGES})
    assert res.status_code == 401
    assert res.json()["error"]["code"] == 401
    assert mock_provider.requests == []


def test_it_refuses_an_unknown_key_with_401_through_the_sdk(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    bad = openai.OpenAI(base_url=gateway.api_url, api_key="sk-or-v1-" + "0" * 64, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.chat.completions.create(model="mock-openai/ok", messages=MESSAGES)
    assert exc.value.status_code == 401
    body = exc.value.response.json()
    assert body["error"]["code"] == 401 and body["error"]["message"]
    assert mock_provider.requests == []


def test_it_refuses_an_unknown_model_with_400(client: openai.OpenAI, mock_provider: MockProvider) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="nobody/no-such-model", messages=MESSAGES)
    assert exc.value.status_code == 400
    assert "nobody/no-such-model" in exc.value.response.json()["error"]["message"]
    assert mock_provider.requests == []


def test_it_refuses_a_malformed_body_with_400(gateway: Gateway, world: World) -> None:
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}", "Content-Type": "application/json"},
        content=b"{not json",
        timeout=30,
    )
    assert res.status_code == 400
    assert res.json()["error"]["code"] == 400


def test_it_refuses_an_org_without_credit_with_402(gateway: Gateway, world: World, mock_provider: MockProvider) -> None:
    broke = openai.OpenAI(base_url=gateway.api_url, api_key=world.broke_key.key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as exc:
        broke.chat.completions.create(model="mock-openai/ok", messages=MESSAGES)
    assert exc.value.status_code == 402
    assert exc.value.response.json()["error"]["code"] == 402
    assert mock_provider.requests == []  # refused at admission: nothing went upstream


def test_it_refuses_a_streaming_request_without_credit_before_the_stream_starts(gateway: Gateway, world: World) -> None:
    res = post(gateway, world.broke_key.key, {"model": "mock-openai/ok", "messages": MESSAGES, "stream": True})
    assert res.status_code == 402
    assert res.headers["content-type"].startswith("application/json")


def test_it_charges_nothing_for_refused_requests(gateway: Gateway, world: World) -> None:
    from billing.ledger import org_balance_nanos

    post(gateway, None, {"model": "mock-openai/ok", "messages": MESSAGES})
    post(gateway, world.key.key, {"model": "nobody/none", "messages": MESSAGES})
    assert org_balance_nanos(world.org) == GRANT_NANOS
    assert org_balance_nanos(world.broke_org) == 0


def test_it_raises_the_openrouter_sdks_typed_errors(gateway: Gateway, world: World) -> None:
    """The OpenRouter SDK parses each error body into its own type; ours must fit those schemas."""
    from openrouter import OpenRouter, errors

    cases = [
        ("sk-or-v1-" + "1" * 64, "mock-openai/ok", errors.UnauthorizedResponseError, 401),
        (world.key.key, "nobody/no-such-model", errors.BadRequestResponseError, 400),
        (world.broke_key.key, "mock-openai/ok", errors.PaymentRequiredResponseError, 402),
        (world.key.key, "mock-openai/429", errors.TooManyRequestsResponseError, 429),
    ]
    for key, model, error_type, status in cases:
        sdk = OpenRouter(api_key=key, server_url=gateway.api_url, timeout_ms=30_000)
        with sdk, pytest.raises(error_type) as exc:
            sdk.chat.send(model=model, messages=[{"role": "user", "content": "hi"}])
        assert exc.value.data.error.code == status
        assert exc.value.data.error.message
