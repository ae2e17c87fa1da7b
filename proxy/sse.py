"""Server-sent events: an incremental decoder for upstream streams and the two encoders we emit.

Hot path: every upstream byte goes through `SSEDecoder.feed`, so it works on bytes with
`find`/`split` (no regex, no per-byte loop) and decodes UTF-8 only once per complete event, which
also makes multi-byte characters split across TCP chunks harmless.
"""

from __future__ import annotations

from typing import NamedTuple

_LF = b"\n"
_CR = b"\r"
_EVENT_END = b"\n\n"


class SSEEvent(NamedTuple):
    event: str | None  # the `event:` name (Anthropic sends one per event; OpenAI and Gemini do not)
    data: str  # `data:` lines joined with "\n"; "[DONE]" is passed through untouched


# A NamedTuple's own constructor checks its arguments in Python; tuple.__new__ builds the same object.
_new_event = tuple.__new__


def _parse_block(block: bytes) -> SSEEvent | None:
    event: str | None = None
    data_lines: list[bytes] = []
    for line in block.split(_LF):
        if not line or line[0] == 0x3A:  # blank, or a ":" comment (keep-alives)
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data_lines.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
        # id: and retry: have no meaning for a one-shot upstream request
    if not data_lines:
        return None  # the spec dispatches nothing for an event without data
    data = data_lines[0] if len(data_lines) == 1 else _LF.join(data_lines)
    return SSEEvent(event, data.decode("utf-8", "replace"))


class SSEDecoder:
    """Turns a byte stream into events, whatever the TCP chunking and line endings (\\n, \\r\\n, \\r)."""

    __slots__ = ("_buf", "_held_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._held_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._held_cr:
            chunk = _CR + chunk
            self._held_cr = False
        if _CR in chunk:
            # A trailing CR may be the first half of CRLF: decide when the next chunk arrives.
            if chunk.endswith(_CR):
                chunk = chunk[:-1]
                self._held_cr = True
            chunk = chunk.replace(b"\r\n", _LF).replace(_CR, _LF)
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(_EVENT_END)
        if end < 0:
            self._buf = buf
            return []
        self._buf = buf[end + 2 :]
        events: list[SSEEvent] = []
        for block in buf[:end].split(_EVENT_END):
            if block[:6] == b"data: " and _LF not in block:  # the common case, inlined: one data line
                events.append(_new_event(SSEEvent, (None, block[6:].decode("utf-8", "replace"))))
            elif block:
                parsed = _parse_block(block)
                if parsed is not None:
                    events.append(parsed)
        return events

    def flush(self) -> list[SSEEvent]:
        """The last event when the upstream closed without the final blank line (lenient on purpose)."""
        rest, self._buf = self._buf, b""
        self._held_cr = False
        parsed = _parse_block(rest.replace(b"\r\n", _LF).replace(_CR, _LF)) if rest.strip() else None
        return [parsed] if parsed is not None else []


def encode_data(payload: bytes) -> bytes:
    """One `data:` frame; the payload is a single-line JSON document (orjson never emits newlines)."""
    return b"data: " + payload + b"\n\n"


def encode_comment(text: str) -> bytes:
    """A comment frame, e.g. the `: OPENROUTER PROCESSING` keep-alive clients must ignore."""
    return b": " + text.replace("\n", " ").encode() + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"
