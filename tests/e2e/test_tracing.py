"""OpenTelemetry traces leave the gateway process over OTLP/HTTP, shaped by the GenAI conventions.

A local receiver stands in for the collector: it decodes the protobuf export requests the real
exporter sends, so the test sees exactly what an operator's collector would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.support import Gateway, World

pytestmark = pytest.mark.e2e
PROMPT = "a distinctive prompt 7f3c9e"


class Collector:
    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()

    def wait_for(self, name: str, timeout: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(s.name == name for s in self.spans):
                    return list(self.spans)
            time.sleep(0.1)
        pytest.fail(f"no {name!r} span arrived; got {[s.name for s in self.spans]}")


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    state = Collector()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            request = ExportTraceServiceRequest()
            request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        state.spans.extend(scope_spans.spans)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Read by the gateway process's settings (tests.e2e.support.gateway_env copies the environment).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield state
    server.shutdown()


def _attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_a_completion_is_one_trace_with_a_span_per_phase(collector: Collector, gateway: Gateway, world: World) -> None:
    res = httpx.post(
        f"{gateway.api_url}/chat/completions",
        json={"model": "mock-openai/ok", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 20},
        headers={"Authorization": f"Bearer {world.key.key}"},
        timeout=30,
    )
    assert res.status_code == 200
    spans = collector.wait_for("chat")
    by_name = {s.name: s for s in spans}
    root = by_name["chat"]
    assert {"admission", "upstream Mock OpenAI", "settle"} <= by_name.keys(), list(by_name)
    for child in ("admission", "upstream Mock OpenAI", "settle"):
        assert by_name[child].trace_id == root.trace_id
        assert by_name[child].parent_span_id == root.span_id

    attrs = _attributes(root)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "mock-openai/ok"
    assert attrs["gen_ai.response.id"] == res.json()["id"]
    assert attrs["gen_ai.usage.input_tokens"] == res.json()["usage"]["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == res.json()["usage"]["completion_tokens"]
    assert attrs["gen_ai.request.max_tokens"] == 20
    upstream = _attributes(by_name["upstream Mock OpenAI"])
    assert upstream["gen_ai.provider.name"] == "Mock OpenAI"
    # Never the conversation itself.
    assert all(PROMPT not in str(_attributes(s)) for s in spans)
