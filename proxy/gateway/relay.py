"""What a stream does with each upstream read, I/O aside: SSE events in, the client's chunks out.

Runs once per TCP read for every streamed answer, so it stays synchronous and cheap: one pass over
the choices for the output bound, one for what the client receives, and the tool-call collector only
for deltas that carry tool calls. benchmarks/stream_events.py times it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from proxy.gateway.call import Outcome
from proxy.plugins.tool_calls import ToolCallCollector
from proxy.plugins.web import WebSearch
from proxy.providers.base import ProviderError, StreamParser, hide_reasoning
from proxy.skins.base import StreamRenderer
from proxy.sse import SSEDecoder


class EventRelay:
    """One per streamed attempt. `feed` returns the bytes to send for one upstream read."""

    __slots__ = (
        "_bound",
        "_decoder",
        "_exclude",
        "_parser",
        "_pieces",
        "_web",
        "capped",
        "error",
        "outcome",
        "tool_calls",
        "writer",
    )

    def __init__(
        self,
        parser: StreamParser,
        writer: StreamRenderer,
        outcome: Outcome,
        *,
        bound: int,
        exclude_reasoning: bool = False,
        web: WebSearch | None = None,
    ) -> None:
        self._parser, self.writer, self.outcome = parser, writer, outcome
        self._decoder = SSEDecoder()
        # The hold covers `bound` completion tokens; an honest upstream sends at most one content delta
        # per token, so more deltas than that is an upstream ignoring max_tokens: stop it at the bound.
        self._bound = bound
        self._pieces: dict[int, int] = {}
        self._exclude = exclude_reasoning
        self._web = web
        self.capped = False
        # An error event the upstream sent inside the stream: raised by the caller after it has sent
        # what came before it in the same read (one read may hold both).
        self.error: ProviderError | None = None
        self.tool_calls = ToolCallCollector()  # judged for the endpoint's tool-call quality (health)

    def feed(self, data: bytes, *, first: bool) -> bytes:
        """The chunks for one read (b"" when it completed no event with choices). `first`: nothing has
        reached the client yet, so the first delta gets its `role`. Stops at the bound (`capped`) and
        at an error event (`error`), returning what came before either."""
        parser, outcome, transcript = self._parser, self.outcome, self.outcome.transcript
        out: list[bytes] = []
        try:
            for event in self._decoder.feed(data):
                choices = parser.feed(event)
                if choices:
                    if _over_bound(self._pieces, choices, self._bound):
                        self.capped = True
                        break
                    if _observe(outcome, choices, first=first and not out, exclude=self._exclude):
                        self.tool_calls.feed(choices)
                    if self._web is not None:
                        self._web.feed(choices)
                    if transcript is not None:
                        transcript.feed(choices)
                    out.append(self.writer.choices(choices))
        except ProviderError as exc:
            self.error = exc
        outcome.usage = parser.usage
        outcome.upstream_id = parser.upstream_id
        outcome.service_tier = parser.service_tier
        return b"".join(out)

    @property
    def finished(self) -> bool:
        """The upstream signalled its natural end (a stream cut short without it is a failure)."""
        return self._parser.finished

    def flush(self) -> bytes:
        """The last event when the upstream closed without its final blank line."""
        tail = [self.writer.choices(c) for c in (self._parser.feed(e) for e in self._decoder.flush()) if c]
        self.outcome.usage = self._parser.usage
        return b"".join(tail)


def _over_bound(pieces: dict[int, int], choices: Sequence[Any], bound: int) -> bool:
    """Count, per choice index, the deltas that carry content, reasoning or a tool call (each is at
    least one token); True once a choice has more than `bound`."""
    for choice in choices:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("reasoning") or delta.get("tool_calls"):
            index = choice.get("index", 0)
            key = index if isinstance(index, int) else 0
            count = pieces[key] = pieces.get(key, 0) + 1
            if count > bound:
                return True
    return False


def _observe(outcome: Outcome, choices: Sequence[Any], *, first: bool, exclude: bool) -> bool:
    """Track what the client receives (for estimates and the record) and normalize the deltas.
    Returns whether a delta carried tool calls (only those need the tool-call collector)."""
    saw_tools = False
    for choice in choices:
        delta = choice.get("delta")
        if delta is None:
            delta = choice["delta"] = {}
        if first:
            delta.setdefault("role", "assistant")
            first = False
        if exclude:
            hide_reasoning(choice)
        content = delta.get("content")
        if content:
            outcome.delivered_chars += len(content)
            outcome.has_output = True
        if len(delta) == 1 and content is not None and choice.get("finish_reason") is None:
            continue  # a text piece, nearly every chunk of a stream
        reasoning = delta.get("reasoning")
        if reasoning:
            outcome.delivered_chars += len(reasoning)
            outcome.has_output = True
        for tool_call in delta.get("tool_calls") or ():
            saw_tools = outcome.has_output = True
            outcome.delivered_chars += len((tool_call.get("function") or {}).get("arguments") or "")
        if choice.get("finish_reason"):
            outcome.finish_reason = choice["finish_reason"]
            outcome.native_finish_reason = choice.get("native_finish_reason") or choice["finish_reason"]
    return saw_tools
