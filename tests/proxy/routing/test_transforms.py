"""Middle-out (contract 2.4) and the prompt-size estimate it relies on."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.tokens import (
    IMAGE_TOKENS,
    MEDIA_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    count_images,
    estimate_prompt_tokens,
    estimate_text_tokens,
)
from proxy.transforms import TRUNCATION_MARKER, middle_out


def msg(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": text, **extra}


def test_it_estimates_four_bytes_a_token_rounding_up() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("abcd") == 1
    assert estimate_text_tokens("abcde") == 2
    assert estimate_text_tokens("日本語") == 3  # 9 UTF-8 bytes: CJK is not under-counted as chars/4 would


def test_it_counts_message_framing_images_media_and_tool_calls() -> None:
    messages = [
        msg("system", "x" * 40),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "y" * 8},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": '{"q":"abcd"}'}}],
        },
    ]
    expected = 3 * MESSAGE_OVERHEAD_TOKENS + 10 + 2 + IMAGE_TOKENS + MEDIA_TOKENS + MESSAGE_OVERHEAD_TOKENS + 1 + 3
    assert estimate_prompt_tokens(messages) == expected
    assert count_images(messages) == 1


def test_it_leaves_a_prompt_that_fits_alone() -> None:
    messages = [msg("user", "hello")]
    assert middle_out(messages, max_prompt_tokens=100) == messages


def test_it_drops_messages_from_the_middle_first() -> None:
    messages = [msg("system", "rules")] + [
        msg("user" if i % 2 == 0 else "assistant", f"m{i} " + "z" * 400) for i in range(9)
    ]
    out = middle_out(messages, max_prompt_tokens=650)
    assert out[0] == messages[0]
    assert out[-1] == messages[-1]
    assert estimate_prompt_tokens(out) <= 650
    # 951 estimated tokens, 105 a message: three go, nearest the middle first (m4, then m3, then m5).
    assert [m["content"][:2] for m in out[1:]] == ["m0", "m1", "m2", "m6", "m7", "m8"]


def test_it_keeps_tool_results_with_their_calls() -> None:
    call = msg(
        "assistant", "", tool_calls=[{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    )
    result = msg("tool", "r" * 2_000, tool_call_id="c")
    messages = [
        msg("user", "start"),
        msg("assistant", "a" * 100),
        call,
        result,
        msg("user", "q" * 100),
        msg("user", "end"),
    ]
    out = middle_out(messages, max_prompt_tokens=150)
    roles = [m["role"] for m in out]
    assert ("tool" in roles) == ("assistant" in roles and any(m.get("tool_calls") for m in out))
    assert out[-1] == messages[-1]
    assert estimate_prompt_tokens(out) <= 150


def test_it_keeps_half_of_the_message_limit_from_each_end() -> None:
    messages = [msg("user", str(i)) for i in range(1_500)]
    out = middle_out(messages, max_prompt_tokens=10**9, max_messages=1_000)
    assert len(out) == 1_000
    assert [m["content"] for m in out[:2]] == ["0", "1"]
    assert out[499]["content"] == "499"
    assert out[500]["content"] == "1000"
    assert out[-1]["content"] == "1499"


def test_it_drops_a_tool_result_cut_off_from_its_call_by_the_message_limit() -> None:
    call = msg(
        "assistant", "", tool_calls=[{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    )
    messages = [msg("user", "a"), call, msg("tool", "r", tool_call_id="c"), msg("user", "b")]
    out = middle_out(messages, max_prompt_tokens=10**9, max_messages=2)
    assert [m["role"] for m in out] == ["user", "user"]


def test_it_truncates_the_middle_of_a_single_huge_message() -> None:
    text = "HEAD" + "x" * 40_000 + "TAIL"
    out = middle_out([msg("system", "be brief"), msg("user", text)], max_prompt_tokens=1_000)
    content = out[-1]["content"]
    assert content.startswith("HEAD") and content.endswith("TAIL")
    assert TRUNCATION_MARKER in content
    assert estimate_prompt_tokens(out) <= 1_000
    assert out[0] == {"role": "system", "content": "be brief"}


def test_it_does_not_modify_the_callers_messages() -> None:
    messages = [msg("user", "x" * 10_000)]
    middle_out(messages, max_prompt_tokens=100)
    assert messages[0]["content"] == "x" * 10_000


conversation = st.lists(
    st.builds(msg, st.sampled_from(["user", "assistant"]), st.text(alphabet="abc ", max_size=600)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    system=st.booleans(),
    messages=conversation,
    budget=st.integers(min_value=60, max_value=3_000),
)
def test_it_always_fits_text_conversations_and_keeps_both_ends(
    system: bool, messages: list[dict[str, Any]], budget: int
) -> None:
    full = ([msg("system", "sys")] if system else []) + messages
    out = middle_out(full, max_prompt_tokens=budget)
    assert estimate_prompt_tokens(out) <= budget
    assert out[-1]["role"] == full[-1]["role"]
    if system:
        assert out[0] == full[0]
