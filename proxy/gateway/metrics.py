"""The gateway's few metric calls: once per request, after the response is sent, from what the call
already noted (`Call.provider_responses` holds every upstream attempt). Definitions: common.metrics.

Cost on the hot path: `StatusRecorder` is a plain callable that hands back `send`'s own awaitable (no
extra coroutine per message), and `completed` does a handful of dict lookups and additions per request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from common import metrics
from proxy.gateway.errors import ERROR_TYPES

if TYPE_CHECKING:
    from proxy.gateway.call import Call
    from proxy.gateway.http import Send

NO_PROVIDER = "none"


class StatusRecorder:
    """Wraps an ASGI `send` to remember the response status as it goes out."""

    __slots__ = ("send", "started", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0
        self.started = time.perf_counter()

    def __call__(self, message: Any) -> Awaitable[None]:
        if not self.status and message["type"] == "http.response.start":
            self.status = int(message["status"])
        return self.send(message)


def api_name(*, legacy: bool, skin: object | None) -> str:
    if skin is not None:
        return type(skin).__name__.removesuffix("Skin").lower() or "skin"
    return "completions" if legacy else "chat"


def refused(api: str, recorder: StatusRecorder, status: int) -> None:
    """Admission said no (auth, validation, credits, limits, routing): one count by reason."""
    metrics.ADMISSIONS.labels("refused", ERROR_TYPES.get(status, "other")).inc()
    _answered(api, recorder, status, NO_PROVIDER)


def completed(api: str, recorder: StatusRecorder, call: Call) -> None:
    """An admitted request is over (answered, failed or cut off): requests, latency, attempts, failovers."""
    metrics.ADMISSIONS.labels("admitted", "").inc()
    tried = call.provider_responses
    provider = NO_PROVIDER
    for index, attempt in enumerate(tried):
        provider = str(attempt.get("provider_name") or NO_PROVIDER)
        status = int(attempt.get("status") or 0)
        outcome = "ok" if status == 200 else str(status)
        metrics.UPSTREAM_ATTEMPT_LATENCY.labels(provider, outcome).observe(int(attempt.get("latency") or 0) / 1000)
        if index + 1 < len(tried):
            metrics.FAILOVERS.labels(provider).inc()
    if tried:
        metrics.UPSTREAM_ATTEMPTS.labels(api).observe(len(tried))
    # 499 (as nginx logs it): the client went away before any response started.
    _answered(api, recorder, recorder.status or 499, provider)


def first_token(provider_name: str, ttft_ms: int | None) -> None:
    if ttft_ms is not None:
        metrics.TTFT.labels(provider_name).observe(ttft_ms / 1000)


def _answered(api: str, recorder: StatusRecorder, status: int, provider: str) -> None:
    metrics.REQUESTS.labels(api, str(status), provider).inc()
    metrics.REQUEST_LATENCY.labels(api).observe(time.perf_counter() - recorder.started)
