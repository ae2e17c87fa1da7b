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
    chunks = [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["Hello", " from"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant" and chunks[0]["id"] == "gen-1"
    assert isinstance(relay.error, ProviderError) and "mid-stream" in relay.error.message
    assert outcome.delivered_chars == len("Hello from") and outcome.has_output
