"""Upstream faults injected by the mock provider. Each test checks four things: what the client saw, which
provider finally answered, the generation record, and the charge on the ledger."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from django.core.management import call_command

from billing.ledger import org_balance_nanos
from proxy.tokens import estimate_text_tokens
from tests.e2e.support import (
    GRANT_NANOS,
    PROVIDER_NAMES,
    Gateway,
    World,
    assert_charged,
    expected_cost,
    generation,
    no_generation,
)
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider
from tests.mockprovider.sse import SSEStream, parse_sse

pytestmark = pytest.mark.e2e

MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]
HELLO = "".join(DEFAULT_PIECES)
OK_COST = expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES))


def order(*providers: str) -> dict[str, Any]:
    return {"provider": {"order": list(providers)}}


def raw_stream(gateway: Gateway, world: World, model: str, **body: Any) -> tuple[httpx.Response, SSEStream]:
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": model, "messages": MESSAGES, "stream": True, **body},
        timeout=30,
    )
    return res, parse_sse(res.text)


def statuses(gen: Any) -> list[int]:
    return [r["status"] for r in gen.provider_responses]


@pytest.mark.parametrize("stream", [False, True])
def test_it_fails_over_from_a_503_to_the_next_provider(
    client: openai.OpenAI, world: World, mock_provider: MockProvider, stream: bool
) -> None:
    kwargs: dict[str, Any] = {
        "model": "failover/503",
        "messages": MESSAGES,
        "extra_body": order("mock-openai", "mock-anthropic"),
    }
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))
        gen_id, provider = chunks[0].id, (chunks[0].model_extra or {})["provider"]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        res = client.chat.completions.create(**kwargs)
        gen_id, provider, text = res.id, (res.model_extra or {})["provider"], res.choices[0].message.content
    assert text == HELLO
    assert provider == PROVIDER_NAMES["mock-anthropic"]
    assert [(r.format, r.model, r.status) for r in mock_provider.requests] == [
        ("openai", "mock-503", 503),
        ("anthropic", "mock-ok", 200),
    ]
    gen = generation(gen_id)
    assert gen.provider_name == PROVIDER_NAMES["mock-anthropic"]
    assert statuses(gen) == [503, 200]
    assert_charged(world, gen, OK_COST)  # the failed attempt costs nothing


def test_it_returns_429_with_retry_after_when_the_only_provider_rate_limits(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-openai/429", "messages": MESSAGES},
        timeout=30,
    )
    assert res.status_code == 429
    assert res.headers["retry-after"] == "1"
    error = res.json()["error"]
    assert error["code"] == 429
    assert error["metadata"]["provider_name"] == PROVIDER_NAMES["mock-openai"]
    assert [r.status for r in mock_provider.requests] == [429]
    no_generation(res.headers["x-generation-id"])
    assert org_balance_nanos(world.org) == GRANT_NANOS


def test_it_fails_over_from_a_429_and_surfaces_429_when_every_provider_limits(
    client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    res = client.chat.completions.create(
        model="failover/429", messages=MESSAGES, extra_body=order("mock-openai", "mock-gemini")
    )
    assert (res.model_extra or {})["provider"] == PROVIDER_NAMES["mock-gemini"]
    assert statuses(generation(res.id)) == [429, 200]
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(
            model="failover/all-429", messages=MESSAGES, extra_body=order("mock-openai", "mock-anthropic")
        )
    assert exc.value.response.headers.get("retry-after") == "1"
    assert org_balance_nanos(world.org) == GRANT_NANOS - OK_COST


def test_it_fails_over_when_the_first_provider_refuses_connections(
    client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    res = client.chat.completions.create(
        model="failover/refused", messages=MESSAGES, extra_body=order("mock-down", "mock-openai")
    )
    assert res.choices[0].message.content == HELLO
    assert (res.model_extra or {})["provider"] == PROVIDER_NAMES["mock-openai"]
    assert len(mock_provider.requests) == 1  # the refused attempt never reached any server
    gen = generation(res.id)
    assert gen.provider_name == PROVIDER_NAMES["mock-openai"]
    assert statuses(gen)[-1] == 200 and statuses(gen)[0] != 200 and len(statuses(gen)) == 2
    assert_charged(world, gen, OK_COST)


def test_it_fails_over_when_the_first_provider_misses_its_first_byte_deadline(
    client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    started = time.monotonic()
    res = client.chat.completions.create(
        model="failover/timeout", messages=MESSAGES, extra_body=order("mock-slow", "mock-gemini")
    )
    assert time.monotonic() - started < 2.5  # did not wait for the slow upstream's 3 s
    assert res.choices[0].message.content == HELLO
    assert (res.model_extra or {})["provider"] == PROVIDER_NAMES["mock-gemini"]
    assert [r.model for r in mock_provider.requests] == ["mock-slow-first-byte-3000", "mock-ok"]
    gen = generation(res.id)
    assert statuses(gen)[0] != 200 and statuses(gen)[-1] == 200
    assert_charged(world, gen, OK_COST)


def test_it_keeps_a_slow_stream_alive_with_processing_comments(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    started = time.monotonic()
    res, stream = raw_stream(gateway, world, "mock-openai/slow-first-byte-2500")
    assert time.monotonic() - started >= 2.5
    assert res.status_code == 200
    assert "OPENROUTER PROCESSING" in stream.comments
    first_comment = res.text.index(": OPENROUTER PROCESSING")
    first_data = res.text.index("data:")
    assert first_comment < first_data
    text = "".join((d["choices"][0]["delta"].get("content") or "") for d in stream.data() if d["choices"])
    assert text == HELLO and stream.done
    gen = generation(res.headers["x-generation-id"])
    assert gen.ttft_ms is not None and gen.ttft_ms >= 2500
    assert_charged(world, gen, OK_COST)


@pytest.mark.parametrize("provider", ["mock-openai", "mock-anthropic", "mock-gemini"])
def test_it_ends_a_cut_stream_with_an_error_event_and_bills_what_was_delivered(
    gateway: Gateway, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res, stream = raw_stream(gateway, world, f"{provider}/cut-after-3")
    assert res.status_code == 200
    data = stream.data()
    delivered = "".join((d["choices"][0]["delta"].get("content") or "") for d in data if d["choices"])
    assert delivered == "".join(DEFAULT_PIECES[:3])
    last = data[-1]
    assert last["error"]["code"] >= 500 and last["error"]["message"]
    assert last["choices"][0]["finish_reason"] == "error"
    assert not stream.done  # an error event, never a clean [DONE]
    assert [r.cut for r in mock_provider.requests] == [True]
    gen = generation(res.headers["x-generation-id"])
    assert gen.finish_reason == "error"
    assert gen.tokens_completion >= estimate_text_tokens(delivered)
    assert gen.provider_name == PROVIDER_NAMES[provider]
    assert_charged(world, gen, expected_cost(gen.tokens_prompt, gen.tokens_completion))


@pytest.mark.parametrize("provider", ["mock-openai", "mock-anthropic"])
def test_it_passes_an_upstream_error_event_mid_stream_on_as_an_error_chunk(
    gateway: Gateway, world: World, mock_provider: MockProvider, provider: str
) -> None:
    res, stream = raw_stream(gateway, world, f"{provider}/error-after-2")
    assert res.status_code == 200
    data = stream.data()
    delivered = "".join((d["choices"][0]["delta"].get("content") or "") for d in data if d["choices"])
    assert delivered == "".join(DEFAULT_PIECES[:2])
    assert data[-1]["error"]["message"] and data[-1]["choices"][0]["finish_reason"] == "error"
    assert not stream.done
    gen = generation(res.headers["x-generation-id"])
    assert gen.finish_reason == "error"
    assert_charged(world, gen, expected_cost(gen.tokens_prompt, gen.tokens_completion))


def test_it_estimates_usage_when_the_stream_reports_none(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    res, stream = raw_stream(gateway, world, "mock-openai/no-usage")
    data = stream.data()
    assert "".join((d["choices"][0]["delta"].get("content") or "") for d in data if d["choices"]) == HELLO
    usage = data[-1]["usage"]  # the client still gets usage, once, last
    assert usage["completion_tokens"] == estimate_text_tokens(HELLO)
    assert stream.done
    gen = generation(res.headers["x-generation-id"])
    assert gen.usage_estimated
    assert gen.tokens_completion == estimate_text_tokens(HELLO)
    assert_charged(world, gen, expected_cost(gen.tokens_prompt, gen.tokens_completion))


def test_it_estimates_usage_when_a_whole_answer_reports_none(client: openai.OpenAI, world: World) -> None:
    res = client.chat.completions.create(model="mock-anthropic/no-usage", messages=MESSAGES)
    assert res.choices[0].message.content == HELLO
    gen = generation(res.id)
    assert gen.usage_estimated and gen.tokens_completion == estimate_text_tokens(HELLO)
    assert_charged(world, gen, expected_cost(gen.tokens_prompt, gen.tokens_completion))


def test_it_cancels_the_upstream_when_the_client_disconnects_mid_stream(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    pieces: list[str] = []
    with httpx.stream(
        "POST",
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-openai/slow-chunks-200", "messages": MESSAGES, "stream": True},
        timeout=30,
    ) as res:
        gen_id = res.headers["x-generation-id"]
        for line in res.iter_lines():
            if line.startswith("data:") and line != "data: [DONE]":
                choices = json.loads(line[5:])["choices"]
                if choices and choices[0]["delta"].get("content"):
                    pieces.append(choices[0]["delta"]["content"])
            if len(pieces) == 2:
                break
    assert pieces == ["t0", " t1"]  # two pieces arrived, then the client went away
    assert mock_provider.wait_until(lambda: bool(mock_provider.requests) and mock_provider.requests[0].cancelled)
    assert mock_provider.requests[0].content_sent < 20
    gen = generation(gen_id)
    assert gen.cancelled and gen.streamed
    assert 0 < gen.tokens_completion < 20
    assert_charged(world, gen, expected_cost(gen.tokens_prompt, gen.tokens_completion))


def test_it_charges_nothing_for_an_empty_completion(client: openai.OpenAI, world: World) -> None:
    res = client.chat.completions.create(model="mock-openai/empty", messages=MESSAGES)
    assert not res.choices[0].message.content
    gen = generation(res.id)
    assert gen.tokens_completion == 0
    assert_charged(world, gen, 0)


def test_it_surfaces_a_cut_stream_to_the_openai_sdk_as_an_api_error(client: openai.OpenAI, world: World) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in client.chat.completions.create(model="mock-openai/cut-after-3", messages=MESSAGES, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == list(DEFAULT_PIECES[:3])  # what arrived before the cut is still delivered
    assert exc.value.message


def test_a_nul_in_user_is_answered_and_still_settles(gateway: Gateway, world: World) -> None:
    """Issue 11, case 1: this event used to be refused by PostgreSQL on every tick, for every tenant."""
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}"},
        json={"model": "mock-openai/ok", "messages": MESSAGES, "user": "a\u0000b"},
        timeout=30,
    )
    assert res.status_code == 200
    gen = generation(res.json()["id"])
    assert gen.external_user == "ab"
    assert_charged(world, gen, OK_COST)
    call_command("ledger_verify")


def test_a_stream_that_ignores_max_tokens_is_stopped_at_it_and_the_upstream_cancelled(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    """Issue 11, case 8: 20 pieces upstream, max_tokens 5: the client gets 5 and `length`."""
    res, events = raw_stream(gateway, world, "mock-openai/slow-chunks-200", max_tokens=5)
    assert res.status_code == 200
    text = "".join((c.get("delta") or {}).get("content") or "" for d in events.data() for c in d.get("choices", ()))
    assert text == "t0 t1 t2 t3 t4"
    finishes = [c["finish_reason"] for d in events.data() for c in d.get("choices", ()) if c.get("finish_reason")]
    assert finishes == ["length"]
    assert mock_provider.wait_until(lambda: bool(mock_provider.requests) and mock_provider.requests[0].cancelled)
    assert mock_provider.requests[0].content_sent < 20
    gen = generation(res.headers["X-Generation-Id"])
    assert gen.finish_reason == "length" and gen.tokens_completion <= 5
    call_command("ledger_verify")
