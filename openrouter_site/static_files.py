"""WhiteNoise for an ASGI server: static files streamed through an asynchronous iterator.

WhiteNoise answers with a FileResponse over a plain (synchronous) file. Under ASGI, Django cannot
stream that: it warns "StreamingHttpResponse must consume synchronous iterators ..." on every page
load and reads the whole file into memory in a worker thread. Here the same response streams the
file in chunks read off the event loop. Under WSGI (the test live server) WhiteNoise is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from whitenoise.middleware import WhiteNoiseMiddleware

CHUNK_BYTES = 64 * 1024


async def _chunks(file: IO[bytes] | None) -> AsyncIterator[bytes]:
    if file is None:  # HEAD, 304: headers only
        return
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        file.close()


class AsgiWhiteNoiseMiddleware(WhiteNoiseMiddleware):  # type: ignore[misc]  # whitenoise is untyped
    @staticmethod
    def serve(static_file: Any, request: HttpRequest) -> Any:
        response = WhiteNoiseMiddleware.serve(static_file, request)
        if isinstance(request, ASGIRequest):
            response.streaming_content = _chunks(getattr(response, "file_to_stream", None))
        return response
