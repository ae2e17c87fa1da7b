"""The mock provider: an aiohttp app serving OpenAI, Anthropic and Gemini paths, with faults per model name.

Paths (what the gateway calls, base URLs as the catalog stores them):
  POST /v1/chat/completions, /v1/completions             OpenAI-compatible (Bearer auth)
  POST /v1/messages                                      Anthropic (x-api-key + anthropic-version)
  POST /v1beta/models/{model}:generateContent            Gemini (x-goog-api-key or ?key=)
  POST /v1beta/models/{model}:streamGenerateContent?alt=sse
  POST /v1beta/models/{model}:embedContent, :batchEmbedContents   Gemini embeddings (no usage)
Control (tests): POST /_control {"model", "scenario": {...}}, POST /_reset, GET /_requests, GET /_health.

Measured on one core with uvloop, a non-streaming answer runs at ~39,000 req/s under wrk, fast enough
that the benchmark's direct and nginx rows measure nginx and the network stack rather than the mock.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.mockprovider import formats
from tests.mockprovider.scenarios import Scenario, flaky_fails, scenario_for_model


@dataclass
class RecordedRequest:
    """What the gateway sent, and how the answer to it ended."""

    id: int
    format: str  # openai | openai-text | anthropic | gemini
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    model: str
    stream: bool
    started_at: float
    status: int = 0
    content_sent: int = 0  # content pieces written before the answer ended
    completed: bool = False  # the whole answer was written
    cut: bool = False  # the mock cut the connection on purpose
    cancelled: bool = False  # the client went away before the answer ended
    ended_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MockState:
    record: bool = True
    api_key: str | None = None  # when set, any other key gets a 401
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def reset(self) -> None:
        with self.lock:
            self.overrides.clear()
            self.counters.clear()
            self.requests.clear()

    def scenario(self, model: str) -> tuple[Scenario, int]:
        """The scenario for this request and its 1-based sequence number for the model."""
        with self.lock:
            n = self.counters.get(model, 0) + 1
            self.counters[model] = n
            overrides = self.overrides.get(model)
        scenario = scenario_for_model(model)
        if overrides:
            scenario = scenario.with_overrides(overrides)
        return scenario, n


STATE_KEY = web.AppKey("mock_state", MockState)

_ERRORS: dict[str, Callable[[int, str], dict[str, Any]]] = {
    "openai": formats.openai_error,
    "openai-text": formats.openai_error,
    "anthropic": formats.anthropic_error,
    "gemini": formats.gemini_error,
}
_STREAM_ERRORS: dict[str, Callable[[int, str], bytes]] = {
    "openai": formats.openai_stream_error,
    "openai-text": formats.openai_stream_error,
    "anthropic": formats.anthropic_stream_error,
    "gemini": formats.gemini_stream_error,
}


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json", headers=headers)


def _key(request: web.Request, fmt: str) -> str:
    if fmt == "anthropic":
        return request.headers.get("x-api-key", "")
    if fmt == "gemini":
        return request.headers.get("x-goog-api-key", "") or request.query.get("key", "")
    auth = request.headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else ""


def _tool_names(body: dict[str, Any], fmt: str) -> list[str]:
    tools = body.get("tools") or []
    if fmt == "gemini":
        return [
            d.get("name", "") for t in tools for d in t.get("functionDeclarations", t.get("function_declarations", []))
        ]
    if fmt == "anthropic":
        return [t.get("name", "") for t in tools if isinstance(t, dict)]
    return [(t.get("function") or {}).get("name", "") for t in tools if isinstance(t, dict)]


def _wants_json(body: dict[str, Any], fmt: str) -> bool:
    if fmt == "gemini":
        config = body.get("generationConfig") or {}
        return config.get("responseMimeType") == "application/json"
    kind = (body.get("response_format") or {}).get("type")
    return kind in ("json_object", "json_schema")


def _failure(scenario: Scenario, n: int) -> tuple[int, str | None]:
    if n <= scenario.fail_first:
        return scenario.fail_status, "1" if scenario.fail_status in (429, 503) else None
    if scenario.flaky_percent and flaky_fails(scenario.flaky_percent, n):
        return 503, None
    if scenario.status != 200:
        return scenario.status, scenario.retry_after
    return 200, None


async def _serve(
    request: web.Request, fmt: str, model: str | None = None, stream: bool | None = None
) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return _json(_ERRORS[fmt](400, "The request body is not valid JSON."), 400)
    if not isinstance(body, dict):
        return _json(_ERRORS[fmt](400, "The request body must be a JSON object."), 400)
    model = model if model is not None else str(body.get("model", ""))
    stream = stream if stream is not None else bool(body.get("stream"))
    rid = next(state.ids)
    rec = RecordedRequest(
        id=rid,
        format=fmt,
        path=request.path,
        query=dict(request.query) if state.record else {},
        headers={k.lower(): v for k, v in request.headers.items()} if state.record else {},
        body=body,
        model=model,
        stream=stream,
        started_at=time.time(),
    )
    if state.record:
        with state.lock:
            state.requests.append(rec)
    try:
        return await _answer(request, state, rec, body, fmt)
    finally:
        rec.ended_at = time.time()


async def _answer(
    request: web.Request, state: MockState, rec: RecordedRequest, body: dict[str, Any], fmt: str
) -> web.StreamResponse:
    key = _key(request, fmt)
    if not key or (state.api_key is not None and key != state.api_key):
        rec.status = 401
        return _json(_ERRORS[fmt](401, "Invalid API key."), 401)
    if fmt == "anthropic" and not request.headers.get("anthropic-version"):
        rec.status = 400
        return _json(_ERRORS[fmt](400, "anthropic-version header is required."), 400)
    scenario, n = state.scenario(rec.model)
    if scenario.first_byte_delay_ms:
        await asyncio.sleep(scenario.first_byte_delay_ms / 1000)
        if request.transport is None or request.transport.is_closing():
            rec.cancelled = True
            return web.Response(status=499)
    status, retry_after = _failure(scenario, n)
    if status != 200:
        rec.status = status
        rec.completed = True
        headers = {"Retry-After": retry_after} if retry_after else None
        return _json(_ERRORS[fmt](status, f"Mock upstream error {status}."), status, headers)
    reply = formats.build_reply(
        scenario,
        model=rec.model,
        request_id=rec.id,
        created=int(rec.started_at),
        tool_names=_tool_names(body, fmt),
        wants_json=_wants_json(body, fmt),
        service_tier=body.get("service_tier") if fmt == "openai" else None,
    )
    rec.status = 200
    if not rec.stream:
        return await _answer_whole(request, rec, scenario, fmt, reply)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if fmt == "openai":
        frames = formats.openai_stream(reply, include_usage=include_usage)
    elif fmt == "openai-text":
        frames = formats.openai_text_stream(reply, include_usage=include_usage)
    elif fmt == "anthropic":
        frames = formats.anthropic_stream(reply)
    else:
        frames = formats.gemini_stream(reply)
    return await _answer_stream(request, rec, scenario, fmt, frames)


async def _answer_whole(
    request: web.Request, rec: RecordedRequest, scenario: Scenario, fmt: str, reply: formats.Reply
) -> web.StreamResponse:
    builders = {
        "openai": formats.openai_body,
        "openai-text": formats.openai_text_body,
        "anthropic": formats.anthropic_body,
        "gemini": formats.gemini_body,
    }
    payload = orjson.dumps(builders[fmt](reply))
    if scenario.cut_after is None:
        rec.content_sent = len(reply.content)
        rec.completed = True
        return web.Response(body=payload, content_type="application/json")
    # A body cut short: the announced length never arrives, then the connection drops.
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.content_length = len(payload)
    await resp.prepare(request)
    await resp.write(payload[: len(payload) // 2])
    rec.cut = True
    if request.transport is not None:
        request.transport.close()
    return resp


async def _answer_stream(
    request: web.Request, rec: RecordedRequest, scenario: Scenario, fmt: str, frames: list[formats.Frame]
) -> web.StreamResponse:
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    plain = scenario.chunk_delay_ms == 0 and scenario.cut_after is None and scenario.error_after is None
    if plain:
        # The fast path (benchmarks): the whole stream in one write, still a valid event stream.
        rec.content_sent = sum(f.content for f in frames)
        rec.completed = True
        return web.Response(body=b"".join(f.data for f in frames), headers=headers)
    resp = web.StreamResponse(headers=headers)
    await resp.prepare(request)
    delay = scenario.chunk_delay_ms / 1000
    try:
        for frame in frames:
            if frame.content and rec.content_sent == scenario.cut_after:
                await asyncio.sleep(scenario.cut_delay_ms / 1000)
                rec.cut = True
                if request.transport is not None:
                    request.transport.close()  # flushes what was written, never sends the last chunk
                return resp
            if frame.content and rec.content_sent == scenario.error_after:
                await resp.write(_STREAM_ERRORS[fmt](529 if fmt == "anthropic" else 500, "Mock mid-stream failure."))
                rec.completed = True
                await resp.write_eof()
                return resp
            if delay and frame.content:
                await asyncio.sleep(delay)
            if request.transport is None or request.transport.is_closing():
                rec.cancelled = True
                return resp
            await resp.write(frame.data)
            rec.content_sent += frame.content
        await resp.write_eof()
        rec.completed = True
    except (ConnectionError, asyncio.CancelledError):
        rec.cancelled = True
        raise
    return resp


async def openai_chat(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "openai")


async def openai_text(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "openai-text")


async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "anthropic")


async def gemini_generate(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["spec"].partition(":")
    if action in ("embedContent", "batchEmbedContents"):
        return await gemini_embeddings(request, model, batch=action == "batchEmbedContents")
    if action not in ("generateContent", "streamGenerateContent"):
        return _json(formats.gemini_error(404, f"Unknown method {action}."), 404)
    # Without alt=sse Gemini streams a JSON array; the gateway is expected to ask for SSE.
    return await _serve(request, "gemini", model=model, stream=action == "streamGenerateContent")


# What `GET /v1/models` lists: a plain name, and a vLLM-style one (author/Name, with max_model_len).
SERVED_MODELS = [
    {"id": "mock-ok", "object": "model", "owned_by": "mock"},
    {"id": "mock-org/Mock-Llama-8B-Instruct", "object": "model", "owned_by": "vllm", "max_model_len": 4096},
]


async def models_list(request: web.Request) -> web.Response:
    # A configured key is checked here too, so "test this key" (BYOK) has a wrong key to fail on.
    expected = request.app[STATE_KEY].api_key
    if expected is not None and _key(request, "openai") != expected:
        return _json(_ERRORS["openai"](401, "Invalid API key."), 401)
    return _json({"object": "list", "data": SERVED_MODELS})


async def control(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    payload = orjson.loads(await request.read())
    scenario = payload.get("scenario") or {}
    scenario_for_model(payload["model"]).with_overrides(scenario)  # refuse unknown fields now, not per request
    with state.lock:
        state.overrides[payload["model"]] = scenario
    return _json({"ok": True})


async def reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return _json({"ok": True})


async def requests_log(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    with state.lock:
        rows = [r.to_dict() for r in state.requests]
    return _json({"data": rows})


def _begin_whole(request: web.Request, fmt: str, kind: str, model: str, body: dict[str, Any]) -> web.Response | None:
    """Record a non-chat request, then check its key and apply its model's scenario fault, as the chat
    handlers do: the error response to send instead of an answer, or None to answer."""
    state = request.app[STATE_KEY]
    rec = RecordedRequest(
        id=next(state.ids), format=kind, path=request.path, query=dict(request.query),
        headers={k.lower(): v for k, v in request.headers.items()} if state.record else {}, body=body,
        model=model, stream=False, started_at=time.time(),
    )  # fmt: skip
    if state.record:
        with state.lock:
            state.requests.append(rec)
    if not _key(request, fmt):
        rec.status = 401
        return _json(_ERRORS[fmt](401, "API key not valid." if fmt == "gemini" else "Invalid API key."), 401)
    scenario, n = state.scenario(model)
    status, retry_after = _failure(scenario, n)
    rec.status, rec.completed, rec.ended_at = status, True, time.time()
    if status == 200:
        return None
    headers = {"Retry-After": retry_after} if retry_after else None
    return _json(_ERRORS[fmt](status, f"Mock upstream error {status}."), status, headers)


async def openai_embeddings(request: web.Request) -> web.Response:
    """OpenAI's /embeddings: one deterministic vector per input (`dimensions` long, 3 by default), one
    prompt token per whitespace-separated word (or per token of a token array). Scenario faults apply."""
    body = orjson.loads(await request.read() or b"{}")
    model = str(body.get("model", ""))
    refusal = _begin_whole(request, "openai", "openai-embeddings", model, body)
    if refusal is not None:
        return refusal
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw or [])
    size = int(body.get("dimensions") or 3)
    data = []
    for i in range(len(inputs)):
        vector = [round((i + 1) * 0.125 + d * 0.25, 6) for d in range(size)]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    tokens = sum(len(x) if isinstance(x, list) else len(str(x).split()) for x in inputs)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _json({"object": "list", "model": model, "data": data, "usage": usage})


async def gemini_embeddings(request: web.Request, model: str, *, batch: bool) -> web.Response:
    """Gemini's embedContent / batchEmbedContents: the same vectors as /v1/embeddings
    (`outputDimensionality` long), floats only, and, like Gemini, no token usage. Scenario faults apply."""
    body = orjson.loads(await request.read() or b"{}")
    refusal = _begin_whole(request, "gemini", "gemini-embeddings", model, body)
    if refusal is not None:
        return refusal
    requests = body.get("requests") if batch else [body]
    if not isinstance(requests, list) or not all(isinstance(r, dict) and r.get("content") for r in requests):
        return _json(formats.gemini_error(400, "content is required."), 400)
    sizes = [int(r.get("outputDimensionality") or 3) for r in requests]
    return _json(formats.gemini_embeddings_body(sizes, batch=batch))


async def health(request: web.Request) -> web.Response:
    return _json({"ok": True})


def build_app(state: MockState | None = None) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE_KEY] = state or MockState()
    app.router.add_post("/v1/chat/completions", openai_chat)
    app.router.add_post("/chat/completions", openai_chat)
    app.router.add_post("/v1/completions", openai_text)
    app.router.add_post("/completions", openai_text)
    app.router.add_post("/v1/messages", anthropic_messages)
    app.router.add_post("/v1beta/models/{spec}", gemini_generate)
    app.router.add_get("/v1/models", models_list)
    app.router.add_post("/v1/embeddings", openai_embeddings)
    app.router.add_post("/_control", control)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/_requests", requests_log)
    app.router.add_get("/_health", health)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MockProvider:
    """The mock served from a background thread with its own event loop, for tests in this process."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, record: bool = True, api_key: str | None = None):
        self.host = host
        self.state = MockState(record=record, api_key=api_key)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = int(self._sock.getsockname()[1])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=f"mockprovider:{self.port}", daemon=True)
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> MockProvider:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("mock provider did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._startup())
        self._ready.set()
        self._loop.run_forever()

    async def _startup(self) -> None:
        self._runner = web.AppRunner(build_app(self.state), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def reset(self) -> None:
        self.state.reset()

    def set_scenario(self, model: str, **overrides: Any) -> None:
        scenario_for_model(model).with_overrides(overrides)
        with self.state.lock:
            self.state.overrides[model] = overrides

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.model == model]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Poll (the mock runs in another thread) until the predicate holds or the timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()


def run(host: str, port: int, *, record: bool) -> None:
    """Serve in the foreground (the CLI and the benchmark), on uvloop when it is installed."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    web.run_app(build_app(MockState(record=record)), host=host, port=port, access_log=None, print=None)
