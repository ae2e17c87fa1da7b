"""Router models through the gateway: `openrouter/auto` and `openrouter/free` honour the circuit
breaker of the models they pick (their health is read for those models' endpoints, not the router's
own catalog row)."""

from __future__ import annotations

import asyncio

import httpx
from django.conf import settings as conf
from pytest_django.fixtures import Settings

from proxy.models import Endpoint, Model
from tests.e2e.support import PROVIDER_NAMES, World
from tests.mockprovider import DEFAULT_PIECES, MockProvider
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client, open_circuit


def endpoint_of(model: str) -> Endpoint:
    return Endpoint.objects.get(model__slug=model)


def free_model(world: World, slug: str, provider: str) -> Endpoint:
    model = Model.objects.create(
        slug=slug, canonical_slug=slug, name=slug, input_modalities=["text"], output_modalities=["text"]
    )
    return Endpoint.objects.create(
        model=model,
        provider=world.providers[provider],
        tag=provider,
        upstream_model="mock-ok",
        context_length=8192,
        max_completion_tokens=1024,
        variant="free",
    )


def ask(key: str, bodies: list[dict[str, object]], open_endpoint: int | None = None) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with asgi_client(key) as client:
            if open_endpoint is not None:
                await open_circuit(open_endpoint, conf.HEALTH_CB_FAILURES)
            return [await client.post(PATH, json=body) for body in bodies]

    return asyncio.run(main())


def test_auto_skips_a_model_whose_only_endpoint_has_an_open_circuit(
    live: World, mock_provider: MockProvider, settings: Settings
) -> None:
    settings.AUTO_ROUTER_MODELS = ["mock-openai/ok", "mock-anthropic/ok"]
    [healthy] = ask(live.key.key, [{"model": "openrouter/auto", "messages": MESSAGES}])
    assert healthy.json()["model"] == "mock-openai/ok"
    mock_provider.reset()

    # No `model` at all means openrouter/auto, too.
    responses = ask(
        live.key.key,
        [{"model": "openrouter/auto", "messages": MESSAGES}, {"messages": MESSAGES}],
        open_endpoint=endpoint_of("mock-openai/ok").pk,
    )
    for res in responses:
        assert res.status_code == 200, res.text
        body = res.json()
        assert (body["model"], body["provider"]) == ("mock-anthropic/ok", PROVIDER_NAMES["mock-anthropic"])
        assert body["choices"][0]["message"]["content"] == "".join(DEFAULT_PIECES)
    assert [r.format for r in mock_provider.requests] == ["anthropic", "anthropic"]


def test_auto_answers_503_when_every_model_it_picks_is_open(
    live: World, mock_provider: MockProvider, settings: Settings
) -> None:
    settings.AUTO_ROUTER_MODELS = ["mock-openai/ok"]
    [res] = ask(live.key.key, [{"model": "openrouter/auto", "messages": MESSAGES}], endpoint_of("mock-openai/ok").pk)
    assert res.status_code == 503
    assert res.json()["error"]["metadata"]["error_type"] == "provider_overloaded"
    assert "retry-after" in res.headers
    assert mock_provider.requests == []


def test_free_skips_a_free_model_whose_endpoint_has_an_open_circuit(live: World, mock_provider: MockProvider) -> None:
    broken = free_model(live, "free/one:free", "mock-openai")
    free_model(live, "free/two:free", "mock-gemini")
    # openrouter/free shuffles its picks per request: ten tries would meet the broken one first by chance.
    responses = ask(live.key.key, [{"model": "openrouter/free", "messages": MESSAGES}] * 10, broken.pk)
    assert {(r.status_code, r.json()["model"]) for r in responses} == {(200, "free/two:free")}
    assert {r.format for r in mock_provider.requests} == {"gemini"}
