"""The upstream HTTP client against real sockets: small asyncio servers that answer byte for byte
what each case needs (keep-alive, chunks, a close mid-body, silence, a bad certificate)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import uvloop

from proxy.providers.base import HttpCall
from proxy.transport import KEEPALIVE_S, Timeouts, Transport, TransportError

FAST = Timeouts(connect_s=2, first_byte_s=2, idle_s=2)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running `handler` per connection; counts connections and requests."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, path: str = "/v1/chat/completions") -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}{path}"

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        request = head + await reader.readexactly(length)
        self.requests.append(request)
        return request


def call(url: str, body: bytes = b'{"model":"m"}') -> HttpCall:
    return HttpCall(url=url, headers={"Authorization": "Bearer k", "Content-Type": "application/json"}, body=body)


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%b\r\n%b" % (
        len(body),
        extra,
        body,
    )


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,  # what the gateway runs under uvicorn
}
_loop = ["asyncio"]


@pytest.fixture(autouse=True, params=sorted(LOOPS))
def event_loop_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    _loop[0] = request.param
    yield request.param


def run(main: Callable[[Transport], Awaitable[None]], transport: Transport | None = None) -> None:
    client = transport or Transport()

    async def wrapped() -> None:
        try:
            await main(client)
        finally:
            await client.close()

    with asyncio.Runner(loop_factory=LOOPS[_loop[0]]) as runner:
        runner.run(wrapped())


def test_requests_reuse_one_keep_alive_connection_and_send_what_was_asked() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(ok(b'{"ok":true}', b"Retry-After: 3\r\n"))
                await writer.drain()

        async with Server(handler) as server:
            for n in range(3):
                response = await client.post(call(server.url(), b'{"n":%d}' % n), FAST)
                assert (response.status, await response.read()) == (200, b'{"ok":true}')
                assert response.headers["retry-after"] == "3"
            assert server.connections == 1
            first = server.requests[0]
            assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nAuthorization: Bearer k\r\n" in first
            assert first.endswith(b'\r\nContent-Length: 7\r\n\r\n{"n":0}')

    run(main)


def test_a_chunked_stream_arrives_piece_by_piece() -> None:
    release = asyncio.Event()

    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"7\r\ndata: a\r\n")
            await writer.drain()
            await release.wait()  # the client must see the first piece before the second exists
            writer.write(b"7\r\ndata: b\r\n0\r\n\r\n")
            await writer.drain()
            await reader.read()

        async with Server(handler) as server:
            response = await client.post(call(server.url()), FAST)
            chunks = response.iter_chunks()
            assert await chunks.__anext__() == b"data: a"
            release.set()
            assert [c async for c in chunks] == [b"data: b"]

    run(main)


def test_a_body_delimited_by_the_close_is_read_whole() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 300_000)
            await writer.drain()

        async with Server(handler) as server:
            response = await client.post(call(server.url()), FAST)
            assert await response.read() == b"x" * 300_000  # past the high-water mark: reading paused and resumed

    run(main)


def test_a_reused_connection_the_server_dropped_is_replaced_once() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(ok(b"{}"))
            await writer.drain()
            if server.connections == 1:
                await reader.readuntil(b"\r\n\r\n")  # the next request arrives: dropped unanswered
                writer.transport.abort()

        async with Server(handler) as server:
            assert await (await client.post(call(server.url()), FAST)).read() == b"{}"
            assert await (await client.post(call(server.url()), FAST)).read() == b"{}"
            assert server.connections == 2

    run(main)


def test_a_fresh_connection_dropped_unanswered_is_an_error_not_a_retry() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.transport.abort()

        async with Server(handler) as server:
            with pytest.raises(TransportError) as caught:
                await client.post(call(server.url()), FAST)
            assert caught.value.kind == "disconnected"
            assert server.connections == 1

    run(main)


def test_silence_before_the_headers_is_a_first_byte_timeout() -> None:
    async def main(client: Transport) -> None:
        hung_up = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            await reader.read()  # never answers; returns when the client hangs up
            hung_up.set()

        async with Server(handler) as server:
            with pytest.raises(TransportError) as caught:
                await client.post(call(server.url()), Timeouts(connect_s=2, first_byte_s=0.2, idle_s=2))
            assert caught.value.kind == "first_byte_timeout"
            await asyncio.wait_for(hung_up.wait(), 2)  # the client closed that connection, not pooled it

    run(main)


def test_a_stream_that_goes_quiet_is_an_idle_timeout_after_what_it_sent() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await writer.drain()
            await reader.read()

        async with Server(handler) as server:
            response = await client.post(call(server.url()), Timeouts(connect_s=2, first_byte_s=2, idle_s=0.2))
            got: list[bytes] = []
            with pytest.raises(TransportError) as caught:
                async for chunk in response.iter_chunks():
                    got.append(chunk)
            assert got == [b"hello"] and caught.value.kind == "idle_timeout"

    run(main)


def test_a_close_before_the_promised_length_is_a_disconnect() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await writer.drain()

        async with Server(handler) as server:
            response = await client.post(call(server.url()), FAST)
            got: list[bytes] = []
            with pytest.raises(TransportError) as caught:
                async for chunk in response.iter_chunks():
                    got.append(chunk)
            assert got == [b"partial"] and caught.value.kind == "disconnected"

    run(main)


def test_a_refused_connection_and_a_malformed_answer() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 two hundred\r\n\r\n")
            await writer.drain()
            await reader.read()

        async with Server(handler) as server:
            with pytest.raises(TransportError) as caught:
                await client.post(call(server.url()), FAST)
            assert caught.value.kind == "disconnected" and "Malformed" in caught.value.message
            url = server.url()
        with pytest.raises(TransportError) as caught:
            await client.post(call(url), FAST)  # the server is gone: nothing listens on the port
        assert caught.value.kind == "connect"

    run(main)


def test_a_header_value_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)

        async with Server(handler) as server:
            bad = HttpCall(url=server.url(), headers={"Authorization": "Bearer k\r\nX-Admin: 1"}, body=b"{}")
            with pytest.raises(TransportError) as caught:
                await client.post(bad, FAST)
            assert "line break" in caught.value.message
            assert server.connections == 0 and server.requests == []

    run(main)


def test_an_interim_answer_and_a_gzip_body() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.read_request(reader)
            writer.write(
                b"HTTP/1.1 100 Continue\r\n\r\n" + ok(gzip.compress(b'{"z":1}'), b"Content-Encoding: gzip\r\n")
            )
            await writer.drain()
            await reader.read()

        async with Server(handler) as server:
            response = await client.post(call(server.url()), FAST)
            assert (response.status, await response.read()) == (200, b'{"z":1}')

    run(main)


def test_an_error_status_and_an_idle_connection_past_its_keep_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    from proxy import transport as module

    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.read_request(reader)
                writer.write(b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\nRetry-After: 1\r\n\r\n{}")
                await writer.drain()

        async with Server(handler) as server:
            response = await client.post(call(server.url()), FAST)
            assert (response.status, await response.read(), response.headers["retry-after"]) == (429, b"{}", "1")
            monkeypatch.setattr(module, "KEEPALIVE_S", 0.0)  # the pooled connection has now been idle too long
            assert (await client.post(call(server.url()), FAST)).status == 429
            assert server.connections == 2
        assert KEEPALIVE_S > 0

    run(main)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_with_a_trusted_certificate_and_with_an_unknown_one(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ok(b'{"tls":true}'))
            await writer.drain()

    async def trusted(client: Transport) -> None:
        async with Server(handler, server_tls) as server:
            for _ in range(2):
                assert await (await client.post(call(server.url()), FAST)).read() == b'{"tls":true}'
            assert server.connections == 1

    run(trusted, Transport(ssl.create_default_context(cafile=str(cert))))

    async def unknown(client: Transport) -> None:
        async with Server(handler, server_tls) as server:
            with pytest.raises(TransportError) as caught:
                await client.post(call(server.url()), FAST)
            assert caught.value.kind == "connect" and "CERTIFICATE_VERIFY_FAILED" in caught.value.message

    run(unknown)  # the system's CAs do not know the self-signed certificate


def test_get_uses_a_connection_of_its_own() -> None:
    async def main(client: Transport) -> None:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await server.read_request(reader)
            assert request.startswith(b"GET /v1/models HTTP/1.1\r\n") and b"Connection: close" in request
            writer.write(ok(b'{"data":[]}'))
            await writer.drain()

        async with Server(handler) as server:
            status, body = await client.get(server.url("/v1/models"), {"Authorization": "Bearer k"}, FAST)
            assert (status, body) == (200, b'{"data":[]}')

    run(main)
