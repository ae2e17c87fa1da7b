"""The one shared upstream HTTP client. The only module that imports aiohttp.

One `aiohttp.ClientSession` per process, created lazily in the running event loop, with pooled
keep-alive connections. Measured here behind the same Django view, httpx's pool collapses at 64
concurrent requests (~190 req/s) where aiohttp holds ~1,050, so the hot path uses aiohttp and
httpx stays in tests and one-off calls.

Timeouts are per endpoint and of three kinds: connect, first byte (until the response headers
arrive) and idle (the longest gap between two body chunks of a stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp

from proxy.providers.base import HttpCall


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


class UpstreamResponse:
    """An upstream response whose headers have arrived; the body is read or streamed by the caller."""

    __slots__ = ("_idle_s", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, idle_s: float) -> None:
        self._response = response
        self._idle_s = idle_s
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout(self._idle_s):
                return await self._response.read()
        except TimeoutError as exc:
            raise TransportError("idle_timeout", "Upstream stopped sending the response body") from exc
        except aiohttp.ClientError as exc:
            raise TransportError("disconnected", f"Upstream connection lost: {exc.__class__.__name__}") from exc
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Body chunks as they arrive (no buffering), each within the idle timeout."""
        content = self._response.content
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle_s):
                        data, _ = await content.readchunk()
                except TimeoutError as exc:
                    raise TransportError("idle_timeout", "Upstream stream went idle") from exc
                except aiohttp.ClientError as exc:
                    raise TransportError("disconnected", f"Upstream connection lost: {exc.__class__.__name__}") from exc
                if not data:
                    return
                yield data
        finally:
            self.close()

    def close(self) -> None:
        """Drop the connection: used when the client went away mid-stream, so the upstream stops generating."""
        self._response.close()


class Transport:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post(self, call: HttpCall, timeouts: Timeouts) -> UpstreamResponse:
        """Send the request and wait for the response headers (connect + first-byte timeouts)."""
        session = self._get_session()
        try:
            async with asyncio.timeout(timeouts.first_byte_s):
                response = await session.post(
                    call.url,
                    data=call.body,
                    headers=call.headers,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect_s),
                )
        except TimeoutError as exc:
            raise TransportError("first_byte_timeout", "Upstream did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", f"Could not connect to upstream: {exc.os_error}") from exc
        except aiohttp.ClientError as exc:
            raise TransportError("disconnected", f"Upstream connection failed: {exc.__class__.__name__}") from exc
        return UpstreamResponse(response, timeouts.idle_s)

    async def get(self, url: str, headers: Mapping[str, str], timeouts: Timeouts) -> tuple[int, bytes]:
        """One small GET (a provider's model list, to check a BYOK key): (status, body).

        Rare and user-initiated, so it gets its own short-lived session instead of the shared pool: it
        may run from a sync view's async_to_sync, whose event loop is not the server's.
        """
        timeout = aiohttp.ClientTimeout(total=timeouts.first_byte_s + timeouts.idle_s, sock_connect=timeouts.connect_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout, skip_auto_headers=("User-Agent",)) as session,
                session.get(url, headers=dict(headers)) as response,
            ):
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TransportError("first_byte_timeout", "Upstream did not answer in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", f"Could not connect to upstream: {exc.os_error}") from exc
        except aiohttp.ClientError as exc:
            raise TransportError("disconnected", f"Upstream connection failed: {exc.__class__.__name__}") from exc

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


transport = Transport()
