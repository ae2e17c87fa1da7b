"""Under /api/ the answer is always JSON: Django's own 404, 405 and 500 pages become the API's envelope.

The API's views already answer in the envelope; what this catches is everything around them: a path
no route matches, a method a view does not take (`require_GET` answers with an empty HTML 405), and
any unhandled exception, which Django turns into its HTML 500 page (a debug page with DEBUG on).
Outermost in MIDDLEWARE so it sees what every other layer produced.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse

API_PREFIX = "/api/"
MESSAGES = {
    403: "Forbidden",
    404: "Not Found",
    405: "Method not allowed",
    500: "Internal Server Error",
}


def _is_json(response: HttpResponseBase) -> bool:
    return "json" in (response.get("Content-Type") or "").lower()


def error_response(status: int, message: str, allow: str | None = None) -> HttpResponse:
    body = orjson.dumps({"error": {"code": status, "message": message, "metadata": None}})
    response = HttpResponse(body, status=status, content_type="application/json")
    if allow:
        response["Allow"] = allow
    return response


class ApiJsonErrorsMiddleware:
    # Both modes, so Django under ASGI adds no thread hop of its own for this layer.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        return as_json(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        return as_json(request, await self.get_response(request))


def as_json(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """The response itself, unless it is a non-JSON error under /api/: then the envelope instead."""
    if not request.path.startswith(API_PREFIX) or response.status_code < 400:
        return response
    if _is_json(response) or isinstance(response, StreamingHttpResponse):
        return response
    status = response.status_code
    if status == 405:
        message = f"Method {request.method} not allowed on {request.path}"
    elif status == 404:
        message = f"No such API endpoint: {request.method} {request.path}"
    else:
        # Never the page's text: a debug page carries settings and a stack trace.
        message = MESSAGES.get(status, "Request failed")
    return error_response(status, message, allow=response.get("Allow"))
