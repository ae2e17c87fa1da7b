"""The one shared upstream HTTP client: HTTP/1.1 on asyncio with a keep-alive pool per event loop,
responses parsed by httptools (llhttp, the parser uvicorn already uses for our own requests). The only
module that speaks HTTP to providers.

Why our own client: what the gateway needs is small (POST a JSON body, read the answer or stream it,
three timeouts, a pool), and aiohttp's general client around it cost 22% of the gateway's CPU per
non-streaming request and 15% per stream (py-spy under benchmarks/gateway.py: request and response
objects, its connector, its stream reader, a timer context per await). Before that, httpx's pool
collapsed at 64 concurrent requests (~190 req/s where aiohttp held ~1,050).

Timeouts are per endpoint and of three kinds: connect, first byte (until the response headers
arrive) and idle (the longest gap between two body chunks of a stream; the whole body of `read()`).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple, cast
from urllib.parse import urlsplit

import httptools

from proxy.providers.base import HttpCall

# A pooled connection idle longer than this is closed rather than reused: servers drop theirs after
# their own keep-alive (uvicorn 5 s, nginx 75 s), and a request written into a connection the server is
# closing fails. A connection whose close already arrived is never reused.
KEEPALIVE_S = 30.0
_SWEEP_S = 10.0  # how often a release also closes expired idle connections
_HIGH_WATER = 256 * 1024  # body bytes buffered before reading pauses (a consumer slower than the upstream)


class TransportError(Exception):
    """The upstream could not be reached or went silent: always worth trying another provider."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "connect" | "first_byte_timeout" | "idle_timeout" | "disconnected"
        self.message = message


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    first_byte_s: float
    idle_s: float


class _Origin(NamedTuple):
    tls: bool
    host: str
    port: int


@functools.lru_cache(maxsize=1024)
def _target(url: str) -> tuple[_Origin, str, str]:
    """(origin, request target, Host header) of a URL; endpoints are few, so each is split once."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransportError("connect", f"Unsupported upstream URL: {url!r}")
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    default = port == (443 if tls else 80)
    return _Origin(tls, parts.hostname, port), path, host if default else f"{host}:{port}"


def _request(
    method: str, url: str, headers: Mapping[str, str], body: bytes, *, close: bool = False
) -> tuple[_Origin, bytes]:
    origin, path, host = _target(url)
    lines = [f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            # Header injection: a value from configuration must never start a header of its own.
            raise TransportError("connect", f"Upstream request header {name.strip()!r} contains a line break")
        lines.append(f"{name}: {value}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n" if body or method == "POST" else "\r\n")
    return origin, "".join(lines).encode() + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time; the parser's callbacks fill the
    current response, and the reader waits on one future at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: _Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.reused = False
        self.idle_since = 0.0
        self._new_response()

    def _new_response(self) -> None:
        self.busy = False
        self.received = False  # any byte of this response arrived
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.informational = False
        self.head: asyncio.Future[None] | None = None
        self.body: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.error: TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError("disconnected", f"Malformed upstream response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.busy or self.complete:
            return
        if self.head is not None and self.head.done() and not _framed(self.raw_headers):
            self.on_message_complete()  # a body delimited by the close itself
            return
        self._fail(TransportError("disconnected", "Upstream connection lost"))

    # --- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:  # 1xx: an interim answer, the real one follows on the same connection
            self.informational = True
            self.raw_headers = []
            return
        self.status = status
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            return
        self.complete = True
        self.keep_alive = not self.lost and self.parser.should_keep_alive()
        if self.head is not None and not self.head.done():
            self.head.set_result(None)
        self._wake()

    # --- the reader's side --------------------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[None]:
        """Write a request; the future resolves when its response headers have arrived."""
        assert self.transport is not None
        self._new_response()
        self.busy = True
        self.head = self.loop.create_future()
        self.transport.write(data)
        return self.head

    def take(self) -> bytes:
        """Every body byte buffered so far."""
        body = self.body
        if not body:
            return b""
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        self._resume()
        return data

    def wait(self) -> asyncio.Future[None]:
        """Resolves when more body arrives, the response completes or the connection fails."""
        self.waiter = self.loop.create_future()
        self._resume()
        return self.waiter

    def _resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self._wake()

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for raw_name, raw_value in self.raw_headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


def _framed(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the response says where its body ends (else it ends when the connection closes)."""
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in raw_headers)


class _Pool:
    """Idle keep-alive connections of one event loop, per origin, most recently used first."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tls: ssl.SSLContext) -> None:
        self.loop = loop
        self.tls = tls
        self.idle: dict[_Origin, list[_Connection]] = {}
        self.swept = loop.time()

    async def acquire(self, origin: _Origin, connect_s: float) -> _Connection:
        stack = self.idle.get(origin)
        if stack:
            now = self.loop.time()
            while stack:
                conn = stack.pop()
                if not conn.lost and now - conn.idle_since < KEEPALIVE_S:
                    conn.reused = True
                    return conn
                conn.close()
        return await self.connect(origin, connect_s)

    async def connect(self, origin: _Origin, connect_s: float) -> _Connection:
        loop = self.loop
        try:
            async with asyncio.timeout(connect_s):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, origin),
                    origin.host,
                    origin.port,
                    ssl=self.tls if origin.tls else None,
                    server_hostname=origin.host if origin.tls else None,
                )
        except TimeoutError as exc:
            raise TransportError("connect", "Could not connect to upstream: timed out") from exc
        except OSError as exc:  # refused, unreachable, DNS, and ssl.SSLError (a bad certificate)
            raise TransportError("connect", f"Could not connect to upstream: {exc}") from exc
        return conn

    def release(self, conn: _Connection) -> None:
        if conn.lost or not conn.complete or not conn.keep_alive or conn.transport is None:
            conn.close()
            return
        conn.busy = False
        now = conn.idle_since = self.loop.time()
        self.idle.setdefault(conn.origin, []).append(conn)
        if now - self.swept > _SWEEP_S:
            self.swept = now
            for stack in self.idle.values():
                for old in [c for c in stack if c.lost or now - c.idle_since >= KEEPALIVE_S]:
                    stack.remove(old)
                    old.close()

    def close(self) -> None:
        for stack in self.idle.values():
            for conn in stack:
                conn.close()
        self.idle.clear()


class UpstreamResponse:
    """An upstream response whose headers have arrived; the body is read or streamed by the caller."""

    __slots__ = ("_conn", "_decoder", "_idle_s", "_pool", "headers", "status")

    def __init__(self, conn: _Connection, pool: _Pool, idle_s: float) -> None:
        self._conn: _Connection | None = conn
        self._pool = pool
        self._idle_s = idle_s
        self.status = conn.status
        self.headers: Mapping[str, str] = conn.headers()
        coding = self.headers.get("content-encoding", "identity").strip().lower()
        # Nothing asks for compression, but a server may send it anyway: gzip and deflate are read.
        self._decoder = zlib.decompressobj(wbits=47) if coding in ("gzip", "x-gzip", "deflate") else None
        if self._decoder is None and coding not in ("identity", ""):
            self.close()
            raise TransportError("disconnected", f"Upstream sent an unsupported content-encoding: {coding}")

    async def read(self) -> bytes:
        conn = self._conn
        assert conn is not None, "the body was already consumed"
        try:
            if not conn.complete:
                async with asyncio.timeout(self._idle_s):
                    while not conn.complete:
                        if conn.error is not None:
                            raise conn.error
                        await conn.wait()
            return self._decoded(conn.take(), final=True)
        except TimeoutError as exc:
            raise TransportError("idle_timeout", "Upstream stopped sending the response body") from exc
        finally:
            self._finish()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive (no buffering), each within the idle timeout."""
        conn = self._conn
        assert conn is not None, "the body was already consumed"
        loop = conn.loop
        try:
            while True:
                data = conn.take()
                if data:
                    data = self._decoded(data, final=False)
                    if data:
                        yield data
                    continue
                if conn.complete:
                    tail = self._decoded(b"", final=True)
                    if tail:
                        yield tail
                    return
                if conn.error is not None:
                    raise conn.error
                # A timer per wait instead of an asyncio.timeout block: one handle, no cancellation.
                waiter = conn.wait()
                timer = loop.call_later(self._idle_s, _expire, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
        finally:
            self._finish()

    def _decoded(self, data: bytes, *, final: bool) -> bytes:
        if self._decoder is None:
            return data
        try:
            out = self._decoder.decompress(data)
            return out + self._decoder.flush() if final else out
        except zlib.error as exc:
            raise TransportError("disconnected", f"Upstream sent a corrupt compressed body: {exc}") from exc

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)

    def close(self) -> None:
        """Drop the connection: used when the client went away mid-stream, so the upstream stops generating."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TransportError("idle_timeout", "Upstream stream went idle"))


class Transport:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()  # the system's CAs (SSL_CERT_FILE overrides them)
        return self._tls

    def _pool(self) -> _Pool:
        # Connections belong to the loop that opened them (tests run several loops in turn).
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(loop, self._tls_context())
        return pool

    async def post(self, call: HttpCall, timeouts: Timeouts) -> UpstreamResponse:
        """Send the request and wait for the response headers (connect + first-byte timeouts)."""
        origin, request = _request("POST", call.url, call.headers, call.body)
        pool = self._pool()
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(timeouts.first_byte_s):
                conn = await pool.acquire(origin, timeouts.connect_s)
                try:
                    await conn.send(request)
                except TransportError:
                    if not conn.reused or conn.received:
                        raise
                    # The server closed this idle connection as we wrote on it (nothing came back):
                    # the request never reached it, so it goes once more on a new connection.
                    conn.close()
                    conn = await pool.connect(origin, timeouts.connect_s)
                    await conn.send(request)
        except TimeoutError as exc:
            if conn is not None:
                conn.close()
            raise TransportError("first_byte_timeout", "Upstream did not answer in time") from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return UpstreamResponse(conn, pool, timeouts.idle_s)

    async def get(self, url: str, headers: Mapping[str, str], timeouts: Timeouts) -> tuple[int, bytes]:
        """One small GET (a provider's model list, to check a BYOK key): (status, body).

        Rare and user-initiated, so it uses a connection of its own, closed after: it may run from a
        sync view's async_to_sync, whose event loop is not the server's.
        """
        origin, request = _request("GET", url, headers, b"", close=True)
        pool = _Pool(asyncio.get_running_loop(), self._tls_context())
        try:
            async with asyncio.timeout(timeouts.first_byte_s + timeouts.idle_s):
                conn = await pool.connect(origin, timeouts.connect_s)
                try:
                    await conn.send(request)
                    response = UpstreamResponse(conn, pool, timeouts.idle_s)
                    return response.status, await response.read()
                finally:
                    conn.close()
        except TimeoutError as exc:
            raise TransportError("first_byte_timeout", "Upstream did not answer in time") from exc

    async def close(self) -> None:
        """Close this loop's idle connections (the ASGI lifespan's shutdown)."""
        with_loop = self._pools.pop(asyncio.get_running_loop(), None)
        if with_loop is not None:
            with_loop.close()


transport = Transport()
