"""Model fallbacks (`models: [...]`) and oversized bodies, end to end through the gateway process."""

from __future__ import annotations

import httpx
import openai
import pytest

from billing.models import Generation
from tests.e2e.support import PROVIDER_NAMES, Gateway, World, assert_charged, expected_cost, generation
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "Say hello"}]


def test_it_falls_back_to_the_next_model_and_bills_the_model_that_answered(
    client: openai.OpenAI, world: World, mock_provider: MockProvider
) -> None:
    res = client.chat.completions.create(
        model="mock-openai/503",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_body={"models": ["mock-anthropic/ok"]},
    )
    assert res.model == "mock-anthropic/ok"
    assert res.provider == PROVIDER_NAMES["mock-anthropic"]  # type: ignore[attr-defined]
    assert res.choices[0].message.content == "".join(DEFAULT_PIECES)
    # The first model's only provider was tried (and failed) before the fallback model answered.
    assert [r.model for r in mock_provider.requests] == ["mock-503", "mock-ok"]
    gen = generation(res.id)
    assert gen.model == "mock-anthropic/ok"
    assert gen.provider_name == PROVIDER_NAMES["mock-anthropic"]
    assert [a["status"] for a in gen.provider_responses] == [503, 200]
    assert_charged(world, gen, expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)))


def test_it_refuses_a_body_over_the_size_limit_with_413_and_charges_nothing(
    gateway: Gateway, world: World, mock_provider: MockProvider
) -> None:
    huge = "x" * (10 * 1024 * 1024 + 1)  # settings.MAX_REQUEST_BYTES defaults to 10 MiB
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        headers={"Authorization": f"Bearer {world.key.key}", "Content-Type": "application/json"},
        json={"model": "mock-openai/ok", "messages": [{"role": "user", "content": huge}]},
        timeout=30,
    )
    assert res.status_code == 413
    assert res.json()["error"]["code"] == 413
    assert mock_provider.requests == []
    assert not Generation.objects.exists()
