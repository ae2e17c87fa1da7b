"""The stream relay alone (no I/O): what one upstream read turns into for the client."""

from __future__ import annotations

import orjson

from proxy.gateway.call import Outcome
from proxy.gateway.relay import EventRelay
from proxy.gateway.shape import ChunkWriter
from proxy.providers.base import ProviderError
from proxy.providers.openai import OpenAIStreamParser


def _event(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _content(text: str) -> bytes:
    return _event({"id": "up-1", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]})


def test_content_and_an_error_event_in_one_read_both_reach_the_client() -> None:
    """A read holding the last deltas and the upstream's error event: the deltas go out, then the error
    ends the stream (the client must not lose what the provider already generated and we bill)."""
    writer = ChunkWriter(generation_id="gen-1", created=1, model="m/m", provider_name="P", legacy=False)
    outcome = Outcome(attempt=None, usage=None, streamed=True)  # type: ignore[arg-type]
    relay = EventRelay(OpenAIStreamParser(), writer, outcome, bound=100)
    error = _event({"error": {"code": 500, "message": "Mock mid-stream failure."}})
    out = relay.feed(_content("Hello") + _content(" from") + error + _content(" never"), first=True)
    while relay.held:
        out += relay.feed(b"", first=False)
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["Hello", " from"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[0]["id"] == "gen-1"
    assert isinstance(relay.error, ProviderError) and "mid-stream" in relay.error.message
    assert outcome.delivered_chars == len("Hello from") and outcome.has_output


def test_the_first_delta_of_a_burst_leaves_before_the_rest_is_relayed() -> None:
    """Time to first token: a read holding many events returns the first delta alone; the others are
    held, and relayed by the next calls in order, with nothing lost or repeated."""
    writer = ChunkWriter(generation_id="gen-2", created=1, model="m/m", provider_name="P", legacy=False)
    outcome = Outcome(attempt=None, usage=None, streamed=True)  # type: ignore[arg-type]
    relay = EventRelay(OpenAIStreamParser(), writer, outcome, bound=100)
    burst = b"".join(_content(str(n)) for n in range(5))
    first = relay.feed(burst, first=True)
    assert relay.held and first.count(b"data: ") == 1 and b'"content":"0"' in first
    rest = relay.feed(_content("5") + b"data: [DONE]\n\n", first=False)
    assert not relay.held and relay.finished
    texts = [orjson.loads(line[6:])["choices"][0]["delta"]["content"] for line in rest.split(b"\n\n") if line]
    assert texts == ["1", "2", "3", "4", "5"]
