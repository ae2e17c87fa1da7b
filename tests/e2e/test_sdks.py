"""OpenRouter's Python SDK validates every response against its pydantic models: each read and
management call it offers must parse, through the live gateway. Plus the openai SDK's models.list /
models.retrieve, `reasoning_details` from an OpenAI-style upstream, and the API's JSON-only errors and
CORS as a browser meets them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openrouter import OpenRouter

from organizations.services import IssuedKey, api_key_create
from tests.e2e.support import Gateway, World, expected_cost, generation, usd
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, REASONING_PIECES, MockProvider

pytestmark = pytest.mark.e2e

HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def management(world: World) -> IssuedKey:
    return api_key_create(organization=world.org, name="mgmt", created_by=world.owner, is_management=True)


@pytest.fixture
def admin_sdk(gateway: Gateway, management: IssuedKey) -> Iterator[OpenRouter]:
    with OpenRouter(api_key=management.key, server_url=gateway.api_url, timeout_ms=30_000) as sdk:
        yield sdk


def test_models_list_count_get_and_user(openrouter_client: Any, world: World) -> None:
    listed = openrouter_client.models.list()
    ids = {m.id for m in listed.result.data}
    assert "mock-openai/ok" in ids and "failover/503" in ids
    assert listed.result.total_count == len(listed.result.data)
    assert listed.result.links.next is None
    assert openrouter_client.models.count().data.count == listed.result.total_count

    one = openrouter_client.models.get(author="mock-openai", slug="ok")
    assert one.data.id == "mock-openai/ok" and one.data.links.details.endswith("/mock-openai/ok/endpoints")

    mine = openrouter_client.models.list_for_user(security={"bearer": world.key.key})
    # Every mock provider has a platform key in the gateway's environment: the org can use them all.
    assert {m.id for m in mine.result.data} == ids
    assert mine.result.total_count == len(ids)


def test_endpoints_and_providers(openrouter_client: Any) -> None:
    endpoints = openrouter_client.endpoints.list(author="mock-anthropic", slug="tools")
    (endpoint,) = endpoints.data.endpoints
    assert endpoint.provider_name == "Mock Anthropic" and endpoint.tag == "mock-anthropic"
    assert endpoint.supports_tool_choice.required is True and endpoint.supports_tool_choice.auto is True
    assert endpoint.native_tools == {} and endpoint.service_tier is None and endpoint.supports_diarization is False
    assert openrouter_client.endpoints.list_zdr_endpoints().data == []  # no mock provider claims ZDR
    assert openrouter_client.embeddings.list_models().result.data == []  # no embedding models seeded
    providers = openrouter_client.providers.list()
    assert {"mock-openai", "mock-anthropic", "mock-gemini"} <= {p.slug for p in providers.data}


def test_chat_then_key_credits_and_generation(openrouter_client: Any, world: World) -> None:
    res = openrouter_client.chat.send(model="mock-openai/ok", messages=HELLO)
    cost = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))
    details = res.usage.cost_details
    assert res.usage.cost == pytest.approx(usd(cost))
    assert details.upstream_inference_prompt_cost == pytest.approx(usd(expected_cost(PROMPT_TOKENS, 0)))
    assert details.upstream_inference_completions_cost == pytest.approx(usd(expected_cost(0, len(DEFAULT_PIECES))))
    generation(res.id)  # settled

    gen = openrouter_client.generations.get_generation(id=res.id).data
    assert gen.id == res.id and gen.total_cost == pytest.approx(usd(cost))
    assert gen.data_region == "global" and gen.num_fetches is None and gen.web_search_engine is None
    assert gen.workspace_id == str(world.org.public_id) and gen.api_type == "completions"

    key = openrouter_client.api_keys.get_current_key_metadata().data
    assert key.usage == pytest.approx(usd(cost))
    assert key.budgets == [] and key.effective_budget is None
    assert list(key.allowed_data_regions) == ["global", "europe", "us"]
    credits = openrouter_client.credits.get_credits().data
    assert credits.total_usage == pytest.approx(usd(cost))


def test_streamed_final_chunk_has_every_cost_detail(openrouter_client: Any) -> None:
    with openrouter_client.chat.send(model="mock-anthropic/ok", messages=HELLO, stream=True) as events:
        chunks = list(events)
    details = chunks[-1].usage.cost_details
    assert details.upstream_inference_prompt_cost == pytest.approx(usd(expected_cost(PROMPT_TOKENS, 0)))
    assert details.upstream_inference_completions_cost == pytest.approx(usd(expected_cost(0, len(DEFAULT_PIECES))))


def test_management_keys_round_trip(admin_sdk: OpenRouter, world: World) -> None:
    created = admin_sdk.api_keys.create(name="ci bot", limit=5.0, limit_reset="daily")
    assert created.key.startswith("sk-or-v1-")
    assert created.data.workspace_id == str(world.org.public_id) and created.data.last_used_at is None
    listed = admin_sdk.api_keys.list()
    assert {k.name for k in listed.data} == {"e2e", "ci bot"}
    assert all(k.external_user is None for k in listed.data)
    fetched = admin_sdk.api_keys.get(hash=created.data.hash)
    assert fetched.data.limit == 5.0
    updated = admin_sdk.api_keys.update(hash=created.data.hash, name="ci bot 2", disabled=True)
    assert updated.data.name == "ci bot 2" and updated.data.disabled is True
    admin_sdk.api_keys.delete(hash=created.data.hash)
    assert {k.name for k in admin_sdk.api_keys.list().data} == {"e2e"}


def test_a_key_with_a_limit_shows_it_as_its_budget(gateway: Gateway, world: World) -> None:
    limited = api_key_create(
        organization=world.org, name="capped", created_by=world.owner, limit_nanos=2_000_000_000, limit_reset="weekly"
    )
    with OpenRouter(api_key=limited.key, server_url=gateway.api_url, timeout_ms=30_000) as sdk:
        key = sdk.api_keys.get_current_key_metadata().data
    assert key.effective_budget is not None and key.budgets == [key.effective_budget]
    assert key.effective_budget.scope == "key_limit" and key.effective_budget.limit_usd == 2.0
    assert key.effective_budget.resets_at is not None and key.effective_budget.resets_at.weekday() == 0


def test_openai_sdk_lists_and_retrieves_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "mock-gemini/ok" in ids
    model = client.models.retrieve("mock-gemini/ok")
    assert (model.id, model.object, model.owned_by) == ("mock-gemini/ok", "model", "mock-gemini")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("mock-gemini/missing")


def test_openai_style_reasoning_comes_with_details_and_goes_back(
    client: openai.OpenAI, mock_provider: MockProvider, world: World
) -> None:
    first = client.chat.completions.create(
        model="mock-openai/reasoning", messages=HELLO, extra_body={"reasoning": {"effort": "high"}}
    )
    message = first.choices[0].message.model_extra or {}
    reasoning = "".join(REASONING_PIECES)
    assert message["reasoning"] == reasoning
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": reasoning, "format": "unknown", "index": 0}
    ]

    stream = client.chat.completions.create(
        model="mock-openai/reasoning", messages=HELLO, stream=True, extra_body={"reasoning": {"effort": "high"}}
    )
    streamed = [
        d for c in stream if c.choices for d in (c.choices[0].delta.model_extra or {}).get("reasoning_details") or []
    ]
    assert "".join(d["text"] for d in streamed) == reasoning and {d["index"] for d in streamed} == {0}

    # The client sends the assistant turn back unmodified: accepted, and not forwarded to this host.
    history: list[Any] = [
        *HELLO,
        {"role": "assistant", "content": first.choices[0].message.content, **message},
        {"role": "user", "content": "And again"},
    ]
    again = client.chat.completions.create(model="mock-openai/ok", messages=history)
    assert again.choices[0].message.content == "".join(DEFAULT_PIECES)
    upstream = mock_provider.requests_for("mock-ok")[-1].body["messages"][1]
    assert "reasoning_details" not in upstream and "reasoning" not in upstream


def test_the_api_answers_json_everywhere(gateway: Gateway, world: World) -> None:
    auth = {"Authorization": f"Bearer {world.key.key}"}
    for method, path, status in [
        ("GET", "/api/v1/nope", 404),
        ("GET", "/api/v1/chat/completions", 405),
        ("POST", "/api/v1/models", 405),
        ("DELETE", "/api/v1/key", 405),
    ]:
        response = httpx.request(method, gateway.url + path, headers=auth, timeout=10)
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"].startswith("application/json"), (method, path)
        assert response.json()["error"]["code"] == status


def test_a_browser_can_call_the_api(gateway: Gateway, world: World) -> None:
    preflight_headers = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,http-referer,x-title",
    }
    for path in ("/api/v1/chat/completions", "/api/v1/models", "/api/v1/key"):
        preflight = httpx.options(gateway.url + path, headers=preflight_headers, timeout=10)
        assert preflight.status_code == 204, path
        assert preflight.headers["access-control-allow-origin"] == "*"
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "http-referer", "x-title"} <= allowed
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        json={"model": "mock-openai/ok", "messages": HELLO},
        headers={"Origin": "https://app.example", "Authorization": f"Bearer {world.key.key}"},
        timeout=30,
    )
    assert res.status_code == 200 and res.headers["access-control-allow-origin"] == "*"
    models = httpx.get(f"{gateway.api_url}/models", headers={"Origin": "https://app.example"}, timeout=10)
    assert models.headers["access-control-allow-origin"] == "*"
