"""The SSE codec: upstream byte streams split anywhere must decode to the same events."""

from __future__ import annotations

import pytest

from proxy.sse import DONE_FRAME, SSEDecoder, SSEEvent, encode_comment, encode_data


def decode_in_pieces(raw: bytes, size: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for start in range(0, len(raw), size):
        events.extend(decoder.feed(raw[start : start + size]))
    return events + decoder.flush()


STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b"event: message_start\n"
    b'data: {"type":"message_start"}\n\n'
    b'data: {"text":"caf\xc3\xa9 \xe2\x98\x95"}\n\n'
    b"data: first line\n"
    b"data: second line\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("message_start", '{"type":"message_start"}'),
    SSEEvent(None, '{"text":"café ☕"}'),
    SSEEvent(None, "first line\nsecond line"),
    SSEEvent(None, "[DONE]"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 13, 64, 10_000])
def test_it_decodes_the_same_events_whatever_the_chunking(size: int) -> None:
    assert decode_in_pieces(STREAM, size) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 7, 10_000])
def test_it_accepts_crlf_and_lone_cr_line_endings(size: int) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    cr = STREAM.replace(b"\n", b"\r")
    assert decode_in_pieces(crlf, size) == EXPECTED
    assert decode_in_pieces(cr, size) == EXPECTED


def test_it_does_not_emit_an_event_until_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert decoder.feed(b"\n") == [SSEEvent(None, '{"a":1}')]


def test_it_treats_a_crlf_split_between_chunks_as_one_line_break() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n\r") == []
    assert decoder.feed(b"\ndata: y\r\n\r\n") == [SSEEvent(None, "x"), SSEEvent(None, "y")]


def test_it_ignores_comments_ids_retries_and_events_without_data() -> None:
    raw = b": keep-alive\n\nid: 7\nretry: 100\n\nevent: ping\n\nid: 8\ndata:no-space\n\n"
    assert decode_in_pieces(raw, 4) == [SSEEvent(None, "no-space")]


def test_it_flushes_a_final_event_that_lacks_the_closing_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"done":true}') == []
    assert decoder.flush() == [SSEEvent(None, '{"done":true}')]
    assert decoder.flush() == []


def test_it_encodes_data_frames_and_comment_frames() -> None:
    assert encode_data(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_comment("OPENROUTER PROCESSING") == b": OPENROUTER PROCESSING\n\n"
    assert encode_comment("two\nlines") == b": two lines\n\n"
    assert DONE_FRAME == b"data: [DONE]\n\n"


def test_it_round_trips_what_it_encodes() -> None:
    raw = encode_comment("hi") + encode_data(b'{"x":"y"}') + DONE_FRAME
    assert decode_in_pieces(raw, 3) == [SSEEvent(None, '{"x":"y"}'), SSEEvent(None, "[DONE]")]
