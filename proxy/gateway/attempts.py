"""Failover: the one loop both runners (nonstream.py, streaming.py) try a call's attempts with.

- Budget: a request makes at most GATEWAY_MAX_ATTEMPTS upstream attempts (applied at admission, so
  the credit hold covers exactly the attempts that can happen).
- Which errors fail over: connect errors, timeouts, 429 and 5xx (`upstream.retryable`), never a 4xx
  the request caused; and a runner may forbid it (a stream that already sent content).
- Health: every attempt's result is recorded for its endpoint (failures as they happen, a success
  after the response is delivered), and every attempt is noted for the generation record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from proxy.gateway import tracing
from proxy.gateway.call import Call
from proxy.gateway.errors import GatewayError
from proxy.gateway.upstream import UpstreamFailure, failure_status, retryable, upstream_error
from proxy.health import get_health_store
from proxy.plugins.file_parser import FileParserError
from proxy.plugins.tool_calls import tool_calls_ok as judge_tool_calls
from proxy.providers.base import ProviderError
from proxy.routing import Attempt
from proxy.routing.sticky import conversation_key, sticky_applies, sticky_first, sticky_table
from proxy.transport import TransportError


def within_budget(attempts: tuple[Attempt, ...]) -> tuple[Attempt, ...]:
    """The attempts a request may make: the retry budget across providers and fallback models."""
    return attempts[: settings.GATEWAY_MAX_ATTEMPTS]


@dataclass(slots=True)
class Try:
    """One attempt in progress."""

    call: Call
    attempt: Attempt
    started: float = field(default_factory=time.perf_counter)

    def answered(self) -> None:
        """The upstream answered in full: note it for the generation record (before settling)."""
        note_attempt(self.call, self.attempt, 200, self.started)


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a successful attempt delivered, for the endpoint's health stats."""

    completion_tokens: int
    ttft_ms: int | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()  # the answer's tool calls, judged for tool-call quality


@dataclass(frozen=True, slots=True)
class Failed:
    """No attempt succeeded: the last one tried and the error the client gets for it."""

    attempt: Attempt
    error: GatewayError


AttemptRunner = Callable[[Try], Awaitable[Delivered]]


async def run_attempts(
    call: Call, run: AttemptRunner, *, may_fail_over: Callable[[], bool] = lambda: True
) -> Failed | None:
    """Run `run` on each attempt in order until one delivers (None) or failover ends (`Failed`).

    `run` raises ProviderError or TransportError for a failed attempt; anything else propagates.
    """
    sticky = _sticky_key(call)
    if sticky is not None:  # the conversation's last endpoint first (proxy/routing/sticky.py)
        call.attempts = sticky_first(call.attempts, sticky_table().get(sticky))
    for index, attempt in enumerate(call.attempts):
        current = Try(call, attempt)
        candidate = attempt.candidate
        try:
            await _files_for(call, attempt)
        except FileParserError as exc:  # a PDF we cannot read: the client's error, not the provider's
            return Failed(attempt, GatewayError(exc.status, exc.message))
        try:
            with tracing.attempt_span(candidate.provider_name, attempt.model_slug, candidate.upstream_model):
                delivered = await run(current)
        except (ProviderError, TransportError) as exc:
            await _failed(current, exc)
            if sticky is not None:
                sticky_table().unpin(sticky, candidate.endpoint_id)
            if retryable(exc) and index + 1 < len(call.attempts) and may_fail_over():
                continue
            return Failed(attempt, upstream_error(exc, attempt.candidate))
        await record_health(
            current.call,
            attempt,
            ok=True,
            status=200,
            started=current.started,
            ttft_ms=delivered.ttft_ms,
            tokens=delivered.completion_tokens,
            tool_calls_ok=judge_tool_calls(call.req.body.get("tools"), delivered.tool_calls),
        )
        if sticky is not None:
            sticky_table().pin(sticky, candidate.endpoint_id)
        return None
    raise AssertionError("a call is admitted only with at least one attempt")


def _sticky_key(call: Call) -> str | None:
    req = call.req
    if len(call.attempts) < 2 or not sticky_applies(req.provider, req.models, req.route):
        return None
    session = req.session_id or str(req.body.get("prompt_cache_key") or "")
    return conversation_key(call.key.state.key_id, req.models[0], session, req.body["messages"])


async def _files_for(call: Call, attempt: Attempt) -> None:
    """The file-parser plugin: this attempt's messages carry the PDF, or its text for a model that cannot read PDFs."""
    files = call.req.files
    if files is None:
        return
    info = call.catalog.get(attempt.candidate.model_slug)
    native = files.native_for(info.input_modalities if info is not None else ())
    messages = await files.messages_for(native=native, max_bytes=settings.FILE_PARSER_MAX_BYTES)
    call.req.body = {**call.req.body, "messages": messages}


async def _failed(current: Try, exc: UpstreamFailure) -> None:
    status = failure_status(exc)
    note_attempt(current.call, current.attempt, status, current.started)
    await record_health(current.call, current.attempt, ok=False, status=status, started=current.started)


def note_attempt(call: Call, attempt: Attempt, status: int, started: float) -> None:
    call.provider_responses.append(
        {
            "provider_name": attempt.candidate.provider_name,
            "endpoint_tag": attempt.candidate.tag,
            "model_permaslug": attempt.model_slug,
            "status": status,
            "latency": int((time.perf_counter() - started) * 1000),
            "is_byok": attempt.candidate.is_byok,
        }
    )


async def record_health(
    call: Call,
    attempt: Attempt,
    *,
    ok: bool,
    status: int,
    started: float,
    ttft_ms: int | None = None,
    tokens: int | None = None,
    tool_calls_ok: bool | None = None,
) -> None:
    if not ok and attempt.candidate.is_byok:
        # A tenant's own key failing (revoked, out of quota) says nothing about the provider.
        return
    elapsed = (time.perf_counter() - started) * 1000
    await get_health_store().record(
        attempt.candidate.endpoint_id,
        ok=ok,
        rate_limited=status == 429,
        latency_ms=elapsed if ok else None,
        ttft_ms=ttft_ms,
        tokens=tokens,
        duration_ms=elapsed if ok else None,
        org_id=call.key.state.org_id,
        tool_calls_ok=tool_calls_ok,
    )
