"""Organization data policies and key model restrictions, enforced by the gateway on every request.

The world's catalog plus one model, `policy/m`, served by three providers with different data
policies: Mock OpenAI may train on prompts, Mock Anthropic keeps nothing (ZDR), Mock Gemini does
not train or retain but is not ZDR.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from organizations.models import Membership
from organizations.policy import api_key_set_allowed_models, organization_set_data_policy
from organizations.services import IssuedKey, api_key_create
from proxy.catalog.snapshot import catalog_bump_version
from proxy.models import Endpoint, Model, Provider
from tests.e2e.support import PROVIDER_NAMES, World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import MESSAGES, PATH, asgi_client

MODEL = "policy/m"


@pytest.fixture
def policy_world(live: World) -> World:
    Provider.objects.filter(slug="mock-openai").update(retains_prompts=True, trains_on_prompts=True, zdr=False)
    Provider.objects.filter(slug="mock-anthropic").update(retains_prompts=False, trains_on_prompts=False, zdr=True)
    Provider.objects.filter(slug="mock-gemini").update(retains_prompts=False, trains_on_prompts=False, zdr=False)
    model = Model.objects.create(
        slug=MODEL,
        canonical_slug=MODEL,
        name=MODEL,
        context_length=8192,
        input_modalities=["text"],
        output_modalities=["text"],
    )
    for slug in ("mock-openai", "mock-anthropic", "mock-gemini"):
        Endpoint.objects.create(
            model=model,
            provider=live.providers[slug],
            tag=slug,
            upstream_model="mock-ok",
            context_length=8192,
            max_completion_tokens=1024,
            prompt_nanos_per_mtok=1_000_000_000,
            completion_nanos_per_mtok=2_000_000_000,
        )
    catalog_bump_version()  # the /models listing is cached per catalog version
    return live


def set_policy(world: World, **policy: Any) -> None:
    fields: dict[str, Any] = {
        "deny_data_collection": False,
        "zdr_only": False,
        "allowed_providers": [],
        "blocked_providers": [],
        "allowed_models": [],
        **policy,
    }
    owner = Membership.objects.get(organization=world.org, user=world.owner)
    organization_set_data_policy(actor=owner, **fields)


def post(key: str, body: dict[str, Any]) -> httpx.Response:
    async def main() -> httpx.Response:
        async with asgi_client(key) as client:
            return await client.post(PATH, json={"messages": MESSAGES, "max_tokens": 16, **body})

    return asyncio.run(main())


def served_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.headers["x-openrouter-provider"])


def refusal(response: httpx.Response, status: int) -> tuple[str, list[str]]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    return error["message"], error["metadata"]["excluded_by"]


# --- no training / retention ----------------------------------------------------------------------


def test_a_request_for_a_training_provider_is_routed_elsewhere(
    policy_world: World, mock_provider: MockProvider
) -> None:
    set_policy(policy_world, deny_data_collection=True)
    # The request prefers the training provider and explicitly allows data collection: the policy wins.
    body = {"model": MODEL, "provider": {"order": ["mock-openai"], "data_collection": "allow"}}
    assert served_by(post(policy_world.key.key, body)) != PROVIDER_NAMES["mock-openai"]
    assert "openai" not in [r.format for r in mock_provider.requests]


def test_without_a_policy_the_same_request_goes_to_the_training_provider(policy_world: World) -> None:
    body = {"model": MODEL, "provider": {"order": ["mock-openai"], "data_collection": "allow"}}
    assert served_by(post(policy_world.key.key, body)) == PROVIDER_NAMES["mock-openai"]


def test_a_request_that_only_a_training_provider_could_serve_is_refused(
    policy_world: World, mock_provider: MockProvider
) -> None:
    set_policy(policy_world, deny_data_collection=True)
    message, excluded_by = refusal(post(policy_world.key.key, {"model": "mock-openai/ok"}), 404)
    assert excluded_by == ["data_policy:training", "org_policy"]
    assert "your organization's data policy" in message
    # Pinning the provider does not get around it either.
    body = {"model": MODEL, "provider": {"only": ["mock-openai"], "data_collection": "allow"}}
    assert refusal(post(policy_world.key.key, body), 404)[1] == ["data_policy:training", "org_policy"]
    assert mock_provider.requests == []


# --- ZDR only ---------------------------------------------------------------------------------------


def test_zdr_only_keeps_requests_on_zdr_endpoints_even_when_the_request_says_false(policy_world: World) -> None:
    set_policy(policy_world, zdr_only=True)
    body = {"model": MODEL, "provider": {"zdr": False, "order": ["mock-gemini", "mock-openai"]}}
    assert served_by(post(policy_world.key.key, body)) == PROVIDER_NAMES["mock-anthropic"]
    pinned = {"model": MODEL, "provider": {"only": ["mock-gemini"]}}
    assert refusal(post(policy_world.key.key, pinned), 404)[1] == ["data_policy:zdr", "org_policy"]


# --- allowed and blocked providers --------------------------------------------------------------


def test_allowed_providers_cannot_be_widened_by_the_request(policy_world: World) -> None:
    set_policy(policy_world, allowed_providers=["mock-gemini"])
    assert served_by(post(policy_world.key.key, {"model": MODEL})) == PROVIDER_NAMES["mock-gemini"]
    body = {"model": MODEL, "provider": {"only": ["mock-openai", "mock-anthropic"]}}
    message, excluded_by = refusal(post(policy_world.key.key, body), 404)
    assert excluded_by == ["allowed_providers", "org_policy"]
    assert "allowed providers: mock-gemini" in message


def test_a_blocked_provider_is_never_called(policy_world: World, mock_provider: MockProvider) -> None:
    set_policy(policy_world, blocked_providers=["mock-openai"])
    body = {"model": MODEL, "provider": {"order": ["mock-openai"]}}
    assert served_by(post(policy_world.key.key, body)) != PROVIDER_NAMES["mock-openai"]
    message, excluded_by = refusal(post(policy_world.key.key, {"model": "mock-openai/ok"}), 404)
    assert excluded_by == ["allowed_providers", "org_policy"]
    assert "blocked providers: mock-openai" in message
    assert "openai" not in [r.format for r in mock_provider.requests]


# --- allowed models -------------------------------------------------------------------------------


def test_the_organizations_allowed_models_take_wildcards(policy_world: World, mock_provider: MockProvider) -> None:
    set_policy(policy_world, allowed_models=["mock-anthropic/*", MODEL])
    assert served_by(post(policy_world.key.key, {"model": "mock-anthropic/ok"})) == PROVIDER_NAMES["mock-anthropic"]
    assert post(policy_world.key.key, {"model": MODEL}).status_code == 200

    message, excluded_by = refusal(post(policy_world.key.key, {"model": "mock-openai/ok"}), 403)
    assert excluded_by == ["org_policy:allowed_models"]
    assert "mock-openai/ok is not allowed by your organization's data policy" in message
    # A disallowed model in a fallback list is skipped, not tried. (policy/m above is load-balanced
    # across three equally priced providers, so only the requests after this point count.)
    seen = len(mock_provider.requests)
    body = {"models": ["mock-openai/ok", "mock-anthropic/ok"]}
    assert served_by(post(policy_world.key.key, body)) == PROVIDER_NAMES["mock-anthropic"]
    assert [r.format for r in mock_provider.requests[seen:]] == ["anthropic"]


def test_a_keys_allowed_models_narrow_the_organizations(policy_world: World) -> None:
    set_policy(policy_world, allowed_models=["mock-anthropic/*", "mock-gemini/*"])
    restricted = api_key_create(organization=policy_world.org, name="gemini only", created_by=policy_world.owner)
    owner = Membership.objects.get(organization=policy_world.org, user=policy_world.owner)
    api_key_set_allowed_models(actor=owner, api_key=restricted.api_key, allowed_models=["mock-gemini/*"])

    assert served_by(post(restricted.key, {"model": "mock-gemini/ok"})) == PROVIDER_NAMES["mock-gemini"]
    message, excluded_by = refusal(post(restricted.key, {"model": "mock-anthropic/ok"}), 403)
    assert excluded_by == ["key_policy:allowed_models"]
    assert "not allowed for this API key" in message
    # The key cannot widen the organization's list, and the organization's other keys are unaffected.
    api_key_set_allowed_models(actor=owner, api_key=restricted.api_key, allowed_models=["mock-openai/*"])
    assert refusal(post(restricted.key, {"model": "mock-openai/ok"}), 403)[1] == ["org_policy:allowed_models"]
    assert post(policy_world.key.key, {"model": "mock-anthropic/ok"}).status_code == 200


def test_the_router_picks_only_among_allowed_models(policy_world: World) -> None:
    set_policy(policy_world, allowed_models=["mock-gemini/*"])
    for _ in range(3):  # the router's pick is weighted at random: every pick must be an allowed model
        response = post(policy_world.key.key, {"model": "openrouter/auto"})
        assert response.status_code == 200, response.text
        assert response.json()["model"].startswith("mock-gemini/")


# --- embeddings -----------------------------------------------------------------------------------


def test_embeddings_are_bound_by_the_same_policy(policy_world: World) -> None:
    model = Model.objects.create(
        slug="policy/embed",
        canonical_slug="policy/embed",
        name="embed",
        context_length=8192,
        input_modalities=["text"],
        output_modalities=["embeddings"],
    )
    Endpoint.objects.create(
        model=model, provider=policy_world.providers["mock-openai"], tag="mock-openai", upstream_model="embed"
    )

    def embed() -> httpx.Response:
        async def main() -> httpx.Response:
            async with asgi_client(policy_world.key.key) as client:
                return await client.post("/api/v1/embeddings", json={"model": "policy/embed", "input": "a b"})

        return asyncio.run(main())

    assert embed().status_code == 200
    set_policy(policy_world, deny_data_collection=True)
    assert refusal(embed(), 404)[1] == ["data_policy:training", "org_policy"]
    set_policy(policy_world, allowed_models=["mock-anthropic/*"])
    assert refusal(embed(), 403)[1] == ["org_policy:allowed_models"]


# --- reaching a warm gateway ------------------------------------------------------------------------


def test_a_policy_change_reaches_a_gateway_that_has_the_organization_cached(policy_world: World) -> None:
    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with asgi_client(policy_world.key.key) as client:
            body = {"model": "mock-openai/ok", "messages": MESSAGES, "max_tokens": 16}
            first = await client.post(PATH, json=body)  # caches the organization (and its empty policy)
            await sync_to_async(set_policy)(policy_world, allowed_models=["mock-anthropic/*"])
            return first, await client.post(PATH, json=body)

    first, second = asyncio.run(main())
    assert first.status_code == 200, first.text
    assert refusal(second, 403)[1] == ["org_policy:allowed_models"]


# --- /models/user --------------------------------------------------------------------------------


def _user_models(key: IssuedKey | str) -> set[str]:
    plaintext = key if isinstance(key, str) else key.key
    response = Client().get("/api/v1/models/user", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 200, response.content
    return {m["id"] for m in response.json()["data"]}


def test_models_user_reflects_the_policy_and_the_keys_restriction(policy_world: World) -> None:
    before = _user_models(policy_world.key)
    assert {"mock-openai/ok", "mock-anthropic/ok", "mock-gemini/ok", MODEL} <= before

    set_policy(policy_world, deny_data_collection=True, allowed_models=["mock-openai/*", "mock-anthropic/*", MODEL])
    after = _user_models(policy_world.key)
    assert "mock-openai/ok" not in after  # allowed by name, but its only provider trains on prompts
    assert "mock-gemini/ok" not in after  # not in the allowed models
    assert {"mock-anthropic/ok", MODEL} <= after

    restricted = api_key_create(organization=policy_world.org, name="narrow", created_by=policy_world.owner)
    owner = Membership.objects.get(organization=policy_world.org, user=policy_world.owner)
    api_key_set_allowed_models(actor=owner, api_key=restricted.api_key, allowed_models=[MODEL])
    assert _user_models(restricted) & {"mock-anthropic/ok", MODEL} == {MODEL}
