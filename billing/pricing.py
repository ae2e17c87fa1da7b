"""One pricing function, one rounding rule: integer nano-dollars, ceil to the nano-dollar.

Catalog prices are integer nano-dollars per million tokens (per request / per image where priced
so). No floats anywhere: a 20-token request is charged exactly what it costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.money import TOKENS_PER_PRICE_UNIT


@dataclass(frozen=True, slots=True)
class PriceCard:
    prompt: int = 0  # nanos per 1M prompt tokens
    completion: int = 0  # nanos per 1M completion tokens
    cache_read: int | None = None  # None: cached tokens cost the prompt price
    cache_write: int | None = None
    reasoning: int | None = None  # None: reasoning tokens cost the completion price
    request: int = 0  # nanos per request
    image: int = 0  # nanos per input image


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0  # includes cached and cache-write tokens, as providers report it
    completion_tokens: int = 0  # includes reasoning tokens
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0


def _ceil_div(n: int, d: int) -> int:
    return -(-n // d)


def cost_nanos(usage: Usage, price: PriceCard) -> int:
    """What a generation costs, in nano-dollars. All token-priced parts are summed before the one ceil."""
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    writes = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    uncached = usage.prompt_tokens - cached - writes
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    plain_completion = usage.completion_tokens - reasoning
    token_part = (
        uncached * price.prompt
        + cached * (price.prompt if price.cache_read is None else price.cache_read)
        + writes * (price.prompt if price.cache_write is None else price.cache_write)
        + plain_completion * price.completion
        + reasoning * (price.completion if price.reasoning is None else price.reasoning)
    )
    return _ceil_div(token_part, TOKENS_PER_PRICE_UNIT) + price.request + usage.images * price.image


def worst_case_nanos(*, prompt_tokens: int, max_completion_tokens: int, price: PriceCard, images: int = 0) -> int:
    """The most a request can cost, reserved at admission before anything goes upstream."""
    completion_rate = max(price.completion, price.reasoning or 0)
    token_part = prompt_tokens * max(price.prompt, price.cache_write or 0) + max_completion_tokens * completion_rate
    return _ceil_div(token_part, TOKENS_PER_PRICE_UNIT) + price.request + images * price.image


def cost_split_nanos(usage: Usage, price: PriceCard, total_nanos: int) -> tuple[int, int]:
    """`total_nanos` (what `cost_nanos` gave, or 0 when nothing was charged) as (prompt, completion) parts.

    The prompt side (input tokens at their cache rates, per-request and per-image fees) is ceiled on
    its own and capped at the total; the completion side is the rest, so the two always add up exactly.
    """
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    writes = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    uncached = usage.prompt_tokens - cached - writes
    prompt_tokens_part = (
        uncached * price.prompt
        + cached * (price.prompt if price.cache_read is None else price.cache_read)
        + writes * (price.prompt if price.cache_write is None else price.cache_write)
    )
    prompt = _ceil_div(prompt_tokens_part, TOKENS_PER_PRICE_UNIT) + price.request + usage.images * price.image
    prompt = max(0, min(prompt, total_nanos))
    return prompt, total_nanos - prompt
