"""`usage.cost_details`: the provider-side cost split into prompt and completion parts that add up."""

from __future__ import annotations

import pytest

from billing.pricing import PriceCard, Usage, cost_nanos, cost_split_nanos
from proxy.gateway.shape import usage_json

PRICE = PriceCard(prompt=1_000_000_000, completion=2_000_000_000)  # $1 / $2 per million tokens


def test_non_byok_usage_splits_the_list_cost() -> None:
    usage = Usage(prompt_tokens=17, completion_tokens=6)
    cost = cost_nanos(usage, PRICE)  # 17,000 + 12,000 nanos
    body = usage_json(usage, cost_nanos=cost, list_cost_nanos=cost, is_byok=False, price=PRICE)
    assert body["cost"] == pytest.approx(29e-6)
    assert body["cost_details"] == {
        "upstream_inference_cost": None,
        "upstream_inference_prompt_cost": pytest.approx(17e-6),
        "upstream_inference_completions_cost": pytest.approx(12e-6),
    }


def test_byok_usage_shows_what_the_provider_charges() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    listed = cost_nanos(usage, PRICE)
    body = usage_json(usage, cost_nanos=50, list_cost_nanos=listed, is_byok=True, price=PRICE)
    details = body["cost_details"]
    assert details["upstream_inference_cost"] == pytest.approx(2e-3)
    assert details["upstream_inference_prompt_cost"] == pytest.approx(1e-3)
    assert details["upstream_inference_completions_cost"] == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("usage", "price"),
    [
        (Usage(prompt_tokens=3, completion_tokens=1), PriceCard(prompt=333, completion=777)),  # sub-nano parts
        (
            Usage(
                prompt_tokens=100, completion_tokens=50, cached_tokens=60, cache_write_tokens=10, reasoning_tokens=20
            ),
            PriceCard(prompt=3_000, completion=15_000, cache_read=300, cache_write=3_750, reasoning=20_000, request=7),
        ),
        (Usage(prompt_tokens=10, completion_tokens=0, images=2), PriceCard(prompt=1_000, image=5, request=3)),
    ],
)
def test_the_parts_always_add_up_to_the_cost(usage: Usage, price: PriceCard) -> None:
    total = cost_nanos(usage, price)
    prompt, completion = cost_split_nanos(usage, price, total)
    assert prompt + completion == total and prompt >= 0 and completion >= 0


def test_nothing_charged_splits_into_zeroes() -> None:
    """Zero-completion insurance bills 0 for a request that produced nothing: both parts are 0 too."""
    assert cost_split_nanos(Usage(prompt_tokens=500), PRICE, 0) == (0, 0)
