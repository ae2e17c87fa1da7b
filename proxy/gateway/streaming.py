"""Streaming completions as SSE, with the billing policy for abnormal streams (docs/billing-policy.md).

- Bytes go to the client as soon as the upstream's arrive: every TCP read is decoded, translated
  and sent in one ASGI message, nothing is buffered.
- While nothing has been sent, `: OPENROUTER PROCESSING` comments keep the connection alive, and
  a failing provider is replaced by the next one; once content has been sent, a failure becomes
  one SSE error event with `finish_reason: "error"` (never a clean end), and what was delivered is
  billed.
- A client that disconnects cancels the upstream request (its connection is closed) and is billed
  for what was generated: the provider's usage if it reported it, else an estimate from the
  delivered text. Providers that cannot cancel keep generating and bill in full, so for them the
  stream is drained in the background and the provider's final usage is billed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from django.conf import settings

from proxy.gateway.admission import output_bound
from proxy.gateway.attempts import Delivered, Try, run_attempts
from proxy.gateway.call import Call, Outcome
from proxy.gateway.errors import GatewayError
from proxy.gateway.http import Receive, Send, end_body, send_bytes, send_chunk, start_sse
from proxy.gateway.relay import EventRelay
from proxy.gateway.settle import release, settle
from proxy.gateway.shape import DONE, KEEPALIVE, ChunkWriter
from proxy.gateway.transcript import Transcript
from proxy.gateway.upstream import upstream_call
from proxy.providers import get_adapter
from proxy.routing import Attempt
from proxy.skins.base import StreamRenderer
from proxy.transport import TransportError, UpstreamResponse, transport

T = TypeVar("T")


class _Stream:
    """Per-request stream state, shared between the pump and the disconnect watcher."""

    def __init__(self, call: Call, send: Send) -> None:
        self.call = call
        self._send = send
        self.headers_sent = False
        self.content_sent = False
        self.client_gone = False
        self.ended = False  # the response is complete: a disconnect now is the exchange ending, not the client leaving
        self.attempt: Attempt | None = None
        self.response: UpstreamResponse | None = None
        self.outcome: Outcome | None = None
        self.writer: StreamRenderer | None = None  # the answering attempt's, which a mid-stream failure must continue
        self.keepalive_s: float = settings.GATEWAY_KEEPALIVE_SECONDS

    async def start(self, attempt: Attempt | None) -> None:
        if not self.headers_sent:
            self.headers_sent = True
            await start_sse(self._send, self.call.headers(attempt))

    async def write(self, data: bytes) -> None:
        if not self.client_gone:
            await send_chunk(self._send, data)

    async def close(self) -> None:
        self.ended = True
        if not self.client_gone:
            await end_body(self._send)

    async def keepalive(self, aw: Awaitable[T]) -> T:
        """Await `aw`; until content flows, send a keep-alive comment every few seconds of waiting.

        `aw` runs in this task and a timer sends the comments: a fast upstream (the usual case)
        costs one timer handle, not a task and an asyncio.wait per await."""
        if self.content_sent:
            return await aw
        loop = asyncio.get_running_loop()
        pings: list[asyncio.Task[None]] = []

        timer: list[asyncio.TimerHandle] = []  # the one pending timer

        def tick() -> None:
            pings.append(loop.create_task(self._ping(pings[-1] if pings else None)))
            timer[0] = loop.call_later(self.keepalive_s, tick)

        timer.append(loop.call_later(self.keepalive_s, tick))
        try:
            result = await aw
        except BaseException:
            timer[0].cancel()
            for ping in pings:
                ping.cancel()
            raise
        timer[0].cancel()
        for ping in pings:  # the caller writes next: every comment must be out first
            await ping
        return result

    async def _ping(self, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await previous  # one comment at a time, in order
        await self.start(self.attempt)
        await self.write(KEEPALIVE)


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def run_stream(call: Call, send: Send, receive: Receive) -> None:
    stream = _Stream(call, send)
    pump = asyncio.ensure_future(_pump(stream))
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        done, _ = await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if pump in done or stream.ended:
            # Servers report a disconnect as soon as the response is complete; the pump still has to
            # record the attempt's health.
            await pump
            return
        stream.client_gone = True
        if stream.outcome is not None:
            stream.outcome.cancelled = True
        attempt = stream.attempt
        if attempt is not None and not attempt.candidate.supports_cancellation and stream.response is not None:
            await pump  # the provider bills the whole generation anyway: drain it and bill its own usage
            return
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        await _bill_cancelled(stream)
    finally:
        watcher.cancel()
        if not pump.done():
            pump.cancel()


async def _bill_cancelled(stream: _Stream) -> None:
    outcome = stream.outcome
    if outcome is None or not (outcome.has_output or outcome.usage is not None):
        await release(stream.call)
        return
    outcome.cancelled = True
    await settle(stream.call, outcome)


async def _pump(stream: _Stream) -> None:
    # Once content has reached the client, another provider cannot take over the answer.
    failed = await run_attempts(
        stream.call, lambda current: _attempt(stream, current), may_fail_over=lambda: not stream.content_sent
    )
    if failed is not None:
        await _fail(stream, failed.attempt, failed.error)


async def _attempt(stream: _Stream, current: Try) -> Delivered:
    call, attempt = stream.call, current.attempt
    stream.attempt = attempt
    http_call, timeouts = upstream_call(call, attempt, stream=True)
    adapter = get_adapter(attempt.candidate.adapter)
    response = await stream.keepalive(transport.post(http_call, timeouts))
    if response.status >= 400:
        body = await response.read()
        raise adapter.map_error(response.status, response.headers, body)
    stream.response = response
    writer = stream.writer = _writer(call, attempt)
    outcome = stream.outcome = Outcome(attempt=attempt, usage=None, streamed=True)
    outcome.transcript = Transcript() if call.org.log_prompts else None
    relay = EventRelay(
        adapter.stream_parser(),
        writer,
        outcome,
        bound=output_bound(call, attempt.candidate),
        exclude_reasoning=bool(call.req.body.get("reasoning", {}).get("exclude")),
        web=call.web,
    )
    chunks: AsyncIterator[bytes] = response.iter_chunks()
    while not relay.capped:
        try:
            data = await stream.keepalive(chunks.__anext__())
        except StopAsyncIteration:
            break
        out = relay.feed(data, first=not stream.content_sent)
        if out:
            if not stream.content_sent:
                outcome.ttft_ms = int((time.perf_counter() - call.t0) * 1000)
                await stream.start(attempt)
                stream.content_sent = True
            await stream.write(out)
        if relay.error is not None:
            response.close()  # mid-answer: this connection is not reused
            raise relay.error
    if relay.capped:
        response.close()  # the upstream stops generating (and billing) here
        outcome.finish_reason = outcome.native_finish_reason = "length"
        await stream.start(attempt)
        stream.content_sent = True
        await stream.write(writer.choices([{"index": 0, "delta": {}, "finish_reason": "length"}]))
    else:
        tail = relay.flush()
        if tail:
            await stream.start(attempt)
            stream.content_sent = True
            await stream.write(tail)
        if not relay.finished:
            raise TransportError("disconnected", "Upstream ended the stream before it finished")
    file_notes = call.req.files.stream_annotations() if call.req.files is not None else []
    if file_notes and call.skin is None:  # the file-parser plugin's `file` annotations, on a delta of their own
        await stream.start(attempt)
        await stream.write(writer.choices([{"index": 0, "delta": {"annotations": file_notes}}]))
    if call.web is not None and call.web.results and call.skin is None:
        # The web plugin's citations, on a delta of their own once the answer text is known.
        await stream.start(attempt)
        await stream.write(writer.choices([{"index": 0, "delta": {"annotations": call.web.stream_annotations()}}]))
    current.answered()
    usage, _ = await settle(call, outcome)
    await stream.start(attempt)
    # Chat streams end with [DONE]; the skins' own final events say it.
    await stream.write(writer.final(usage) + (DONE if call.skin is None else b""))
    await stream.close()
    return Delivered(
        completion_tokens=usage["completion_tokens"], ttft_ms=outcome.ttft_ms, tool_calls=relay.tool_calls.calls()
    )


def _writer(call: Call, attempt: Attempt) -> StreamRenderer:
    if call.skin is not None:
        return call.skin.stream_renderer(call.render_context(attempt))
    return ChunkWriter(
        generation_id=call.generation_id,
        created=call.created,
        model=attempt.model_slug,
        provider_name=attempt.candidate.provider_name,
        legacy=call.req.legacy_completion,
    )


async def _fail(stream: _Stream, attempt: Attempt, error: GatewayError) -> None:
    """No provider can finish this request. Bill what reached the client; tell it how it ended."""
    call = stream.call
    outcome = stream.outcome
    usage: dict[str, Any] | None = None
    if stream.content_sent and outcome is not None:
        outcome.truncated = True
        outcome.finish_reason = "error"
        usage, _ = await settle(call, outcome)
    else:
        await release(call)
    if not stream.headers_sent:
        error.headers.update(call.headers())
        stream.ended = True
        await send_bytes(stream._send, error.status, error.body(call.skin), error.headers)
        return
    writer = stream.writer or _writer(call, attempt)
    metadata = dict(error.metadata or {})
    message = error.message if error.status < 500 else "The provider stopped responding mid-stream"
    await stream.write(writer.error({"code": error.status, "message": message, "metadata": metadata}, usage))
    await stream.close()
