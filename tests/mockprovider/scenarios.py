"""What the mock provider does for one request, chosen by the upstream model name.

The gateway forwards the endpoint's `upstream_model` untouched, so the name is a control channel the
gateway never has to know about: "mock-503", "mock-cut-after-5", "mock-tools+no-usage". The control
API (`POST /_control`) can override any field for one model name when a test needs a sequence
("fail the first request, then answer").

Content and token counts are fixed so tests can compute the exact charge: every content piece,
reasoning piece and tool call counts a known number of tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

# Prompt tokens reported for every request (usage is not a function of the prompt: charges stay exact).
PROMPT_TOKENS = 17
# The default answer, one token per piece; streamed one piece per chunk.
DEFAULT_PIECES: tuple[str, ...] = ("Hello", " from", " the", " mock", " provider", ".")
REASONING_PIECES: tuple[str, ...] = ("Let", " me", " think", " about", " it", ".")
JSON_PIECES: tuple[str, ...] = ('{"answer"', ": ", "42", "}")
# JSON as models often wrap it: prose, a fence, an unquoted key, a trailing comma, no closing brace.
MESSY_JSON_PIECES: tuple[str, ...] = ("Sure! Here it is:\n", "```json\n", "{answer: 42,", "\n```")
# Each tool call is billed this many completion tokens, whatever its arguments.
TOOL_CALL_TOKENS = 10
TOOL_ARGUMENTS: tuple[dict[str, str], ...] = (
    {"location": "Paris", "unit": "celsius"},
    {"location": "Tokyo", "unit": "celsius"},
    {"location": "Lima", "unit": "celsius"},
)
# What a "+bad-tool-args" endpoint sends instead: a location that is not a string, an unknown unit.
BAD_TOOL_ARGUMENTS: dict[str, object] = {"location": 75001, "unit": "kelvin"}
DEFAULT_TOOL_NAME = "get_weather"
SIGNATURE = "mock-signature-Zm9vYmFy"

_STATUS = re.compile(r"^(\d{3})$")
_WITH_NUMBER = re.compile(r"^([a-z-]+?)-(\d+)$")


@dataclass(frozen=True, slots=True)
class Scenario:
    status: int = 200  # non-200: answer with this status in the provider's error format
    retry_after: str | None = None  # Retry-After header on errors
    first_byte_delay_ms: int = 0  # wait before sending the response headers
    chunk_delay_ms: int = 0  # wait between stream chunks
    chunks: int | None = None  # number of content pieces (None: DEFAULT_PIECES)
    cut_after: int | None = None  # abort the connection after this many content pieces
    # Pause between the last piece and the cut. A real connection rarely dies in the same packet as
    # the data; with 0, aiohttp clients drop the already-received bytes when they see the error first.
    cut_delay_ms: int = 100
    error_after: int | None = None  # send an in-stream error event after this many content pieces
    usage: bool = True  # report usage at all
    tools: int = 0  # tool calls in the answer
    reasoning: bool = False
    json: bool = False  # answer with a JSON object (also when the request asks for JSON mode)
    empty: bool = False  # no content at all, zero completion tokens
    flaky_percent: int = 0  # this share of requests fails with 503, deterministically spread
    fail_first: int = 0  # the first N requests for this model fail with `fail_status`
    fail_status: int = 503
    tags: tuple[str, ...] = field(default=())
    prompt_tokens: int = PROMPT_TOKENS  # reported prompt usage (a provider whose tokenizer counts more)

    def content_pieces(self, *, wants_json: bool = False) -> tuple[str, ...]:
        if self.empty or self.tools:
            return ()
        if "messy-json" in self.tags:  # "+messy-json": what response healing repairs
            return MESSY_JSON_PIECES
        if self.json or wants_json:
            return JSON_PIECES
        if self.chunks is not None:
            return tuple(f"t{i}" if i == 0 else f" t{i}" for i in range(self.chunks))
        return DEFAULT_PIECES

    def reasoning_pieces(self) -> tuple[str, ...]:
        return REASONING_PIECES if self.reasoning and not self.empty else ()

    def completion_tokens(self, *, wants_json: bool = False) -> int:
        return (
            len(self.content_pieces(wants_json=wants_json))
            + len(self.reasoning_pieces())
            + self.tools * TOOL_CALL_TOKENS
        )

    def with_overrides(self, overrides: dict[str, Any]) -> Scenario:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown scenario fields: {sorted(unknown)}")
        return replace(self, **overrides)


def _apply(scenario: Scenario, part: str) -> Scenario:
    if part in ("ok", "mock", ""):
        return scenario
    if _STATUS.match(part):
        status = int(part)
        return replace(scenario, status=status, retry_after="1" if status in (429, 503) else None)
    simple = {
        "no-usage": {"usage": False},
        "tools": {"tools": 1},
        "multi-tools": {"tools": 2},
        "reasoning": {"reasoning": True},
        "json": {"json": True},
        "empty": {"empty": True},
        "slow-first-byte": {"first_byte_delay_ms": 3000},
        "slow-chunks": {"chunk_delay_ms": 100, "chunks": 20},
    }
    if part in simple:
        return replace(scenario, **simple[part])
    match = _WITH_NUMBER.match(part)
    if match:
        name, n = match.group(1), int(match.group(2))
        numbered = {
            "chunks": {"chunks": n},
            "cut-after": {"cut_after": n},
            "error-after": {"error_after": n},
            "slow-first-byte": {"first_byte_delay_ms": n},
            "slow-chunks": {"chunk_delay_ms": n, "chunks": scenario.chunks or 20},
            "flaky": {"flaky_percent": n},
            "tools": {"tools": n},
            "fail-first": {"fail_first": n},
        }
        if name in numbered:
            return replace(scenario, **numbered[name])
    return replace(scenario, tags=(*scenario.tags, part))


@lru_cache(maxsize=1024)  # Scenario is frozen; parsing once per name keeps the benchmark path cheap
def scenario_for_model(model: str) -> Scenario:
    """Parse "mock-<part>[+<part>...]" into a scenario; any other name is a plain successful answer."""
    name = model.rsplit("/", 1)[-1]
    if not name.startswith("mock"):
        return Scenario()
    body = name[len("mock") :].lstrip("-")
    scenario = Scenario()
    for part in body.split("+"):
        scenario = _apply(scenario, part.strip())
    return scenario


def flaky_fails(percent: int, n: int) -> bool:
    """Whether the n-th request (1-based) of a flaky model fails: exactly `percent`% over any run of 100."""
    return (n * percent) // 100 > ((n - 1) * percent) // 100
