"""Optional OpenTelemetry traces for completions, with the GenAI semantic conventions.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set. Off means free: the SDK is not even imported, and
each hook below is one global read returning a shared no-op context manager. On, every completion is
one span (`chat <model>`) with a child per phase: `admission`, one `upstream <provider>` per attempt,
and `settle`. Spans carry model, provider, token counts, finish reason and the generation id, never
prompt or completion text (not even for organizations that log prompts: logs are theirs to read,
traces go to the operator's collector).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()
# The request's root span: phases hang off it even when they run inside an attempt (settlement does).
_root: ContextVar[Span | None] = ContextVar("trace_root", default=None)


def configure() -> None:
    """Per process, at startup (after uvicorn forks its workers: exporter threads do not survive a fork)."""
    global _tracer, _provider
    if not settings.OTEL_EXPORTER_OTLP_ENDPOINT or _tracer is not None:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
    _provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, timeout=5)))
    _tracer = _provider.get_tracer("openrouter_site.gateway")


def on() -> bool:
    return _tracer is not None


def shutdown() -> None:
    """Flush what is buffered (lifespan shutdown)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any], *, root: bool = False) -> Iterator[Span]:
    assert _tracer is not None
    from opentelemetry.trace import set_span_in_context

    parent = None if root else _root.get()
    context = set_span_in_context(parent) if parent is not None else None
    with _tracer.start_as_current_span(name, context=context, attributes=attributes) as span:
        if not root:
            yield span
            return
        token = _root.set(span)
        try:
            yield span
        finally:
            _root.reset(token)


def request_span(api: str) -> contextlib.AbstractContextManager[Span | None]:
    """The root span of one completion; `describe_request()` fills in what admission and settlement learn."""
    if _tracer is None:
        return _NOOP
    return _span("chat", {"gen_ai.operation.name": "chat", "openrouter.api": api}, root=True)


def phase_span(name: str, **attributes: Any) -> contextlib.AbstractContextManager[Span | None]:
    if _tracer is None:
        return _NOOP
    return _span(name, {k: v for k, v in attributes.items() if v is not None})


def attempt_span(provider: str, model: str, upstream_model: str) -> contextlib.AbstractContextManager[Span | None]:
    if _tracer is None:
        return _NOOP
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": model,
        "openrouter.upstream_model": upstream_model,
    }
    return _span(f"upstream {provider}", attributes)


def describe_request(attributes: dict[str, Any]) -> None:
    """Add attributes to the request's root span (None values skipped); a no-op without tracing."""
    span = _root.get() if _tracer is not None else None
    if span is None:
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(key, value)
