"""What the tracing hooks cost a completion when tracing is off (OTEL_EXPORTER_OTLP_ENDPOINT empty).

    .venv/bin/python benchmarks/tracing_off.py

Runs the exact hook sequence one completion executes (request span, admission, one attempt, settle,
the `on()` guard) with tracing off, against an empty loop of the same shape, and prints nanoseconds
per completion. Pure CPU in one process: the machine's other load shifts both numbers alike.
Compare with the gateway's ~800,000 ns of CPU per request (benchmarks/gateway.py).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = ""

import django

django.setup()
from proxy.gateway import tracing  # noqa: E402

N = 1_000_000


def hooks() -> None:
    with tracing.request_span("/api/v1/chat/completions"):
        with tracing.phase_span("admission"):
            pass
        with tracing.attempt_span("OpenAI", "openai/gpt-4o-mini", "gpt-4o-mini"):
            with tracing.phase_span("settle"):
                pass
            if tracing.on():
                tracing.describe_request({})


def baseline() -> None:
    pass


def per_call_ns(fn: object) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(N):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / N)
    return best


if __name__ == "__main__":
    tracing.configure()
    assert not tracing.on(), "tracing must be off for this measurement"
    base, with_hooks = per_call_ns(baseline), per_call_ns(hooks)
    print(f"empty call:                 {base:8.1f} ns")
    print(f"hooks of one completion:    {with_hooks:8.1f} ns  (+{with_hooks - base:.1f} ns per completion, off)")
