"""No 5xx from bad input in the completion body (issue 11, cases 9 and 12), through the ASGI app.

Structurally invalid bodies are refused with 400 in the error envelope before anything is sent
upstream, and hold nothing. A Hypothesis fuzzer then throws arbitrary JSON at every field the
gateway reads, through all three adapters: never a 5xx, never a hold left behind, and a refused
request never moves credit.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing.gate import org_credit_view
from proxy.gateway.validate import CHECKS, PARAM_NAMES, ROUTER_FIELDS
from tests.e2e.support import World
from tests.mockprovider import MockProvider
from tests.proxy.gateway.support import PATH, asgi_client

MODEL = "mock-openai/ok"

BAD_BODIES: list[dict[str, Any]] = [
    {"plugins": [{"id": "auto-router", "allowed_models": 5}], "model": "openrouter/auto"},
    {"plugins": [{"id": "auto-router", "excluded_models": [1, None]}], "model": "openrouter/auto"},
    {"messages": [{"role": "user", "content": [5, None, "s"]}]},
    {"messages": [{"role": "user", "content": ["hello"]}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}]},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": 5}]},
    {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "function": "f"}]}]},
    {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]},
    {"messages": [{"role": "user", "content": "hi", "name": 7}]},
    {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]},
    {"messages": [{"role": "assistant", "content": "", "reasoning_details": [{"type": "reasoning.text", "text": 5}]}]},
]


async def _post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(PATH, json=body)


def post_all(key: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with asgi_client(key) as client:
            return [await _post(client, b) for b in bodies]

    return asyncio.run(main())


@pytest.mark.parametrize("bad", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_structurally_invalid_input_is_a_400_before_anything_goes_upstream(
    live: World, mock_provider: MockProvider, bad: dict[str, Any]
) -> None:
    before = org_credit_view(live.org.pk)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **bad}
    [res] = post_all(live.key.key, [body])
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert error["code"] == 400 and isinstance(error["message"], str)
    assert mock_provider.requests == []
    assert org_credit_view(live.org.pk) == before


# --- The fuzzer ---------------------------------------------------------------------------------

scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    scalars | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
PART_TYPES = ["text", "image_url", "input_audio", "file", "video_url", "input_video", "image", "bogus"]


def mostly(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually a plausible value, sometimes arbitrary JSON: deep enough to reach the adapters."""
    # A middle value picks the junk: Hypothesis favours the bounds of an integer range.
    return st.integers(0, 9).flatmap(lambda n: json_values if n == 5 else good)


text_part = st.fixed_dictionaries({"type": st.just("text"), "text": mostly(st.text(max_size=20))})
image_part = st.fixed_dictionaries(
    {"type": st.just("image_url"), "image_url": mostly(st.fixed_dictionaries({"url": mostly(st.text(max_size=20))}))}
)
other_part = st.fixed_dictionaries(
    {"type": st.sampled_from(PART_TYPES)},
    optional=dict.fromkeys(("text", "image_url", "input_audio", "file", "video_url", "cache_control"), json_values),
)
part = mostly(text_part | image_part | other_part)
function = st.fixed_dictionaries(
    {"name": mostly(st.text(min_size=1, max_size=8))}, optional={"arguments": mostly(st.just('{"a": 1}'))}
)
reasoning_detail = mostly(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["reasoning.text", "reasoning.encrypted", "reasoning.summary"])},
        optional={
            "text": mostly(st.text(max_size=8)),
            "data": mostly(st.text(max_size=8)),
            "signature": mostly(st.text(max_size=8)),
            "format": mostly(st.sampled_from(["anthropic-claude-v1", "google-gemini-v1", "unknown"])),
            "index": mostly(st.integers(0, 2)),
        },
    )
)
tool_call = mostly(
    st.fixed_dictionaries(
        {"id": mostly(st.text(max_size=8)), "type": st.just("function"), "function": mostly(function)}
    )
)
message = mostly(
    st.fixed_dictionaries(
        {
            "role": mostly(st.sampled_from(["system", "developer", "user", "assistant"])),
            "content": mostly(st.text(max_size=40) | st.lists(part, max_size=3)),
        },
        optional={
            "tool_calls": mostly(st.lists(tool_call, max_size=2)),
            "name": mostly(st.text(max_size=8)),
            "reasoning": json_values,
            "reasoning_details": mostly(st.lists(reasoning_detail, max_size=2)),
            "cache_control": json_values,
        },
    )
)
tool = mostly(st.fixed_dictionaries({"type": st.just("function"), "function": mostly(function)}))
FIELDS = sorted(
    (set(CHECKS) | PARAM_NAMES | ROUTER_FIELDS | {"provider", "service_tier", "modalities"})
    - {"messages", "model", "stream", "prompt"}
)
extras = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=2)
body = st.builds(
    lambda base, tools, more: {**base, **({"tools": tools} if tools else {}), **more},
    st.fixed_dictionaries(
        {
            "model": mostly(
                st.sampled_from(["mock-openai/ok", "mock-anthropic/ok", "mock-gemini/ok", "mock-openai/tools"])
            ),
            "messages": mostly(st.lists(message, min_size=1, max_size=3)),
        },
        optional={"max_tokens": mostly(st.integers(1, 64)), "stream": st.booleans()},
    ),
    st.none() | st.lists(tool, min_size=1, max_size=2),
    st.one_of(st.just({}), extras),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bodies=st.lists(body, min_size=1, max_size=4))
def test_fuzzed_completion_bodies_never_5xx_and_failures_move_no_credit(
    live: World, mock_provider: MockProvider, bodies: list[dict[str, Any]]
) -> None:
    async def main() -> list[tuple[int, dict[str, int], dict[str, int], str]]:
        seen = []
        async with asgi_client(live.key.key) as client:
            for b in bodies:
                before = await asyncio.to_thread(org_credit_view, live.org.pk)
                res = await _post(client, b)
                after = await asyncio.to_thread(org_credit_view, live.org.pk)
                seen.append((res.status_code, before, after, res.text))
        return seen

    for (status, before, after, text), sent in zip(asyncio.run(main()), bodies, strict=True):
        event(f"status {status}")
        assert status < 500, (sent, text)
        assert after["reserved"] == 0, sent  # every hold released
        if status != 200:
            assert "error" in json.loads(text), text
            assert after["spent"] == before["spent"], sent  # a refused request moved no credit
