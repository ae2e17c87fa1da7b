"""Refuse request lines no view can use: a NUL byte in the path or query string.

PostgreSQL cannot store or even compare text containing NUL, so such a value reaching any lookup
turned into a 500 (`/api/v1/keys/%00`, `/api/v1/generation?id=%00`, ...). One check here covers
every path parameter and query parameter of every view, present and future.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse


class RefuseNulBytesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw_query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "\x00" in unquote(raw_query):
            message = "The request's path or query string contains a NUL byte."
            if request.path.startswith("/api/"):
                return JsonResponse({"error": {"code": 400, "message": message, "metadata": None}}, status=400)
            return HttpResponseBadRequest(message)
        return self.get_response(request)
