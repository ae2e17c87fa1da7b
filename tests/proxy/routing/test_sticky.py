"""Sticky routing: one conversation stays on one endpoint while it answers, so prompt caches hit.

The table and the reordering on their own, then through the gateway: `sticky/m` is served by three
providers at one price, which load balancing would spread a conversation across.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from billing.models import Generation
from organizations.services import IssuedKey
from proxy.catalog.snapshot import catalog_bump_version
from proxy.models import Endpoint, Model
from proxy.routing.sticky import StickyTable, conversation_key, sticky_applies, sticky_first, sticky_table
from proxy.routing.types import Attempt
from tests.billing.api.support import ApiClient
from tests.e2e.support import PROVIDER_NAMES, World, _mock_server, mock_provider, provider_env, world
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import PATH, asgi_client, open_circuit
from tests.proxy.routing.support import cand
from tests.support import Triad

__all__ = ["_mock_server", "mock_provider", "world"]

MODEL = "sticky/m"
PROVIDERS = ("mock-openai", "mock-anthropic", "mock-gemini")


# --- the table and the reordering ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pins_expire_after_the_idle_ttl_and_each_success_refreshes_them() -> None:
    clock = Clock()
    table = StickyTable(max_entries=10, ttl_s=300, clock=clock)
    table.pin("c", 7)
    clock.now = 299
    assert table.get("c") == 7
    table.pin("c", 7)  # a success
    clock.now = 598
    assert table.get("c") == 7
    clock.now = 599
    assert table.get("c") is None
    assert len(table) == 0


def test_the_table_is_bounded_and_drops_the_least_recently_pinned() -> None:
    table = StickyTable(max_entries=2, ttl_s=300, clock=Clock())
    table.pin("a", 1)
    table.pin("b", 2)
    table.pin("a", 1)
    table.pin("c", 3)
    assert (table.get("a"), table.get("b"), table.get("c")) == (1, None, 3)


def test_unpin_forgets_only_the_failed_endpoint() -> None:
    table = StickyTable(max_entries=10, ttl_s=300, clock=Clock())
    table.pin("c", 1)
    table.unpin("c", 2)
    assert table.get("c") == 1
    table.unpin("c", 1)
    assert table.get("c") is None


def test_the_conversation_is_the_session_or_the_leading_messages() -> None:
    system = {"role": "system", "content": "You are terse."}
    turn1 = [system, {"role": "user", "content": "Hi"}]
    turn2 = [*turn1, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "More"}]
    assert conversation_key(1, "m", "", turn1) == conversation_key(1, "m", "", turn2)
    assert conversation_key(1, "m", "", turn1) != conversation_key(1, "m", "", [system, turn2[3]])
    assert conversation_key(1, "m", "", turn1) != conversation_key(2, "m", "", turn1)  # per API key
    assert conversation_key(1, "m", "", turn1) != conversation_key(1, "n", "", turn1)  # per model
    assert conversation_key(1, "m", "s1", turn1) == conversation_key(1, "m", "s1", [{"role": "user", "content": "x"}])


def test_an_explicit_order_or_sort_wins() -> None:
    assert sticky_applies(None, ("a/b",), None)
    assert sticky_applies({"allow_fallbacks": True}, ("a/b",), None)
    assert not sticky_applies({"order": ["x"]}, ("a/b",), None)
    assert not sticky_applies({"sort": "price"}, ("a/b",), None)
    assert not sticky_applies(None, ("a/b:nitro",), None)
    assert not sticky_applies(None, ("a/b", "c/d"), "sort")


def test_the_pinned_endpoint_moves_first_only_within_the_primary_model_and_behind_byok() -> None:
    a, b, c = (Attempt(cand(f"p{n}", endpoint_id=n), "m/x") for n in (1, 2, 3))
    fallback = Attempt(cand("p4", endpoint_id=4), "m/y")
    assert sticky_first((a, b, c), 3) == (c, a, b)
    assert sticky_first((a, b, c), None) == (a, b, c)
    assert sticky_first((a, b, c), 9) == (a, b, c)  # not in the plan (filtered, circuit open): no pin
    assert sticky_first((a, b, fallback), 4) == (a, b, fallback)
    byok = Attempt(dataclasses.replace(cand("p5", endpoint_id=5), is_byok=True), "m/x")
    assert sticky_first((byok, a, b), 2) == (byok, a, b)


# --- through the gateway ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_table() -> Iterator[None]:
    sticky_table().clear()
    yield
    sticky_table().clear()


@pytest.fixture
def three_equal(world: World, mock_provider: MockProvider, settings: Settings) -> World:
    settings.PROVIDER_ENV = provider_env(world, mock_provider)
    model = Model.objects.create(
        slug=MODEL,
        canonical_slug=MODEL,
        name=MODEL,
        context_length=8192,
        input_modalities=["text"],
        output_modalities=["text"],
    )
    for slug in PROVIDERS:
        Endpoint.objects.create(
            model=model,
            provider=world.providers[slug],
            tag=slug,
            upstream_model="mock-ok",
            context_length=8192,
            max_completion_tokens=1024,
            prompt_nanos_per_mtok=1_000_000_000,
            completion_nanos_per_mtok=2_000_000_000,
        )
    catalog_bump_version()
    return world


def turn(n: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    for k in range(n):
        messages += [{"role": "assistant", "content": f"answer {k}"}, {"role": "user", "content": f"question {k}"}]
    return messages


def send(world: World, bodies: list[dict[str, Any]], headers: dict[str, str] | None = None) -> list[str]:
    """Each request's serving provider name, in order."""

    async def main() -> list[httpx.Response]:
        async with asgi_client(world.key.key) as client:
            return [
                await client.post(PATH, json={"model": MODEL, "max_tokens": 8, **body}, headers=headers)
                for body in bodies
            ]

    responses = asyncio.run(main())
    for response in responses:
        assert response.status_code == 200, response.text
    return [str(r.headers["x-openrouter-provider"]) for r in responses]


def test_a_session_stays_on_one_provider(three_equal: World) -> None:
    # Load balancing alone would put six requests on one of three providers 1 time in 243.
    served = send(three_equal, [{"messages": turn(n), "session_id": "conv-1"} for n in range(6)])
    assert len(set(served)) == 1, served


def test_the_session_header_and_the_leading_messages_keep_a_conversation_too(three_equal: World) -> None:
    by_header = send(three_equal, [{"messages": turn(n)} for n in range(6)], headers={"x-session-id": "conv-2"})
    assert len(set(by_header)) == 1, by_header
    sticky_table().clear()
    by_prefix = send(three_equal, [{"messages": turn(n)} for n in range(6)])
    assert len(set(by_prefix)) == 1, by_prefix


def test_without_stickiness_the_providers_share_the_load(three_equal: World) -> None:
    # Different conversations (each its own session) are load-balanced as before.
    served = send(three_equal, [{"messages": turn(0), "session_id": f"conv-{n}"} for n in range(24)])
    assert len(set(served)) > 1, served


def test_an_explicit_order_wins_over_the_pin(three_equal: World) -> None:
    [first] = send(three_equal, [{"messages": turn(0), "session_id": "s"}])
    other = next(slug for slug in PROVIDERS if PROVIDER_NAMES[slug] != first)
    [ordered] = send(three_equal, [{"messages": turn(1), "session_id": "s", "provider": {"order": [other]}}])
    assert ordered == PROVIDER_NAMES[other]
    # An ordered request neither follows nor moves the pin (docs/openrouter-api.md 2.9): the next one is back.
    assert send(three_equal, [{"messages": turn(2), "session_id": "s"}]) == [first]


def test_a_broken_sticky_provider_loses_the_conversation(three_equal: World, mock_provider: MockProvider) -> None:
    [first] = send(three_equal, [{"messages": turn(0), "session_id": "s"}])
    pinned = next(slug for slug in PROVIDERS if PROVIDER_NAMES[slug] == first)
    Endpoint.objects.filter(model__slug=MODEL, tag=pinned).update(upstream_model="mock-503")
    catalog_bump_version()
    moved = send(three_equal, [{"messages": turn(n), "session_id": "s"} for n in (1, 2, 3)])
    assert first not in moved and len(set(moved)) == 1, moved
    # The failing provider was tried once (the failover that moved the pin), then no more.
    failed = [r for r in mock_provider.requests if r.model == "mock-503"]
    assert len(failed) == 1


def test_an_open_circuit_moves_the_conversation(three_equal: World) -> None:
    [first] = send(three_equal, [{"messages": turn(0), "session_id": "s"}])
    pinned = next(slug for slug in PROVIDERS if PROVIDER_NAMES[slug] == first)
    endpoint = Endpoint.objects.get(model__slug=MODEL, tag=pinned)

    async def break_it() -> None:
        async with asgi_client(three_equal.key.key):
            await open_circuit(endpoint.id, 10)

    asyncio.run(break_it())
    moved = send(three_equal, [{"messages": turn(n), "session_id": "s"} for n in (1, 2, 3)])
    assert first not in moved and len(set(moved)) == 1, moved


# --- what stickiness buys, on the bill ------------------------------------------------------------


def test_cache_read_and_write_tokens_show_in_the_generation(triad: Triad, api_key: IssuedKey) -> None:
    Generation.objects.create(
        generation_id="gen-cached",
        organization=triad.org,
        api_key=api_key.api_key,
        model="a/one",
        provider_slug="prov",
        provider_name="Prov",
        tokens_prompt=4_000,
        tokens_cached=3_000,
        tokens_cache_write=500,
        tokens_completion=5,
        cost_nanos=1_000,
        cache_discount_nanos=2_000,
        created_at=timezone.now(),
    )
    data = ApiClient(api_key.key).get("/api/v1/generation", id="gen-cached").json()["data"]
    assert (data["native_tokens_cached"], data["native_tokens_cache_write"]) == (3_000, 500)
    client = Client()
    client.force_login(triad.member)
    html = client.get(f"/o/{triad.org.slug}/activity/generations/gen-cached/").content.decode()
    assert "3,000 cached" in html and "500 cache write" in html and "Cache discount" in html
