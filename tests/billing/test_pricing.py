from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.pricing import PriceCard, Usage, cost_nanos, worst_case_nanos
from common.money import fee_nanos, nanos_to_usd_number, price_per_token_str, usd_to_nanos

GPT4O = PriceCard(prompt=2_500_000_000, completion=10_000_000_000, cache_read=1_250_000_000)


def test_it_charges_a_tiny_request_exactly() -> None:
    # 12 prompt + 8 completion tokens at $2.50/$10 per M: 30,000 + 80,000 nanos.
    assert cost_nanos(Usage(prompt_tokens=12, completion_tokens=8), GPT4O) == 110_000


def test_it_prices_cached_tokens_at_the_cache_read_rate() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=0, cached_tokens=600)
    assert cost_nanos(usage, GPT4O) == 400 * 2_500 + 600 * 1_250


def test_it_ceils_once_to_the_nano_dollar() -> None:
    assert cost_nanos(Usage(prompt_tokens=1), PriceCard(prompt=1)) == 1
    assert cost_nanos(Usage(prompt_tokens=3), PriceCard(prompt=333_333)) == 1


def test_it_prices_reasoning_tokens_at_the_reasoning_rate() -> None:
    card = PriceCard(completion=10_000_000_000, reasoning=20_000_000_000)
    assert cost_nanos(Usage(completion_tokens=100, reasoning_tokens=40), card) == 60 * 10_000 + 40 * 20_000


def test_it_formats_prices_like_openrouter() -> None:
    assert price_per_token_str(2_500_000_000) == "0.0000025"
    assert price_per_token_str(0) == "0"
    assert price_per_token_str(150_000_000) == "0.00000015"


def test_it_parses_usd_exactly_and_refuses_sub_nano_amounts() -> None:
    assert usd_to_nanos("5") == 5_000_000_000
    assert usd_to_nanos(Decimal("0.000000001")) == 1
    with pytest.raises(ValueError):
        usd_to_nanos("0.0000000001")


def test_it_ceils_fees() -> None:
    assert fee_nanos(100_000_000_000, Decimal("5.5")) == 5_500_000_000
    assert fee_nanos(1, 5) == 1


@given(
    prompt=st.integers(0, 2_000_000),
    completion=st.integers(0, 200_000),
    cached=st.integers(0, 2_000_000),
    p=st.integers(0, 100_000_000_000),
    c=st.integers(0, 100_000_000_000),
)
def test_worst_case_always_covers_the_actual_cost(prompt: int, completion: int, cached: int, p: int, c: int) -> None:
    card = PriceCard(prompt=p, completion=c, cache_read=p // 10)
    actual = cost_nanos(Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached), card)
    assert actual <= worst_case_nanos(prompt_tokens=prompt, max_completion_tokens=completion, price=card)
    assert actual >= 0


@given(st.integers(min_value=-(10**19), max_value=10**19))
def test_usd_numbers_in_json_are_the_float_nearest_the_exact_amount(nanos: int) -> None:
    assert nanos_to_usd_number(nanos) == float(Decimal(nanos) / 1_000_000_000)
