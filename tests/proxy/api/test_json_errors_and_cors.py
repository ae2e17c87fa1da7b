"""Under /api/ every answer is JSON (unknown paths, wrong methods, crashes), and /api/v1 speaks CORS."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.test import Client, RequestFactory

from proxy.api.middleware import ApiJsonErrorsMiddleware
from proxy.gateway.cors import with_cors

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/models/a/b/c/d", "/api/v2/models", "/api/"])
def test_an_unknown_api_path_is_a_json_404(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == 404


def test_a_wrong_method_is_a_json_405_that_keeps_allow(client: Client) -> None:
    response = client.post("/api/v1/models", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json() == {
        "error": {"code": 405, "message": "Method POST not allowed on /api/v1/models", "metadata": None}
    }
    assert response["Allow"] == "GET"
    assert client.delete("/api/v1/providers").json()["error"]["code"] == 405


def test_pages_outside_the_api_keep_their_html_404(client: Client) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "json" not in response["Content-Type"]


def test_a_crash_under_api_never_leaves_as_html() -> None:
    def crashing_view(request: HttpRequest) -> HttpResponse:
        return HttpResponseServerError("<html>Traceback (most recent call last): SECRET_KEY=...</html>")

    middleware = ApiJsonErrorsMiddleware(crashing_view)
    response = middleware(RequestFactory().get("/api/v1/key"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b"Traceback" not in response.content
    assert response.content == b'{"error":{"code":500,"message":"Internal Server Error","metadata":null}}'
    page = ApiJsonErrorsMiddleware(crashing_view)(RequestFactory().get("/credits"))
    assert b"Traceback" in page.content  # not ours to touch outside /api/


def test_the_async_chain_is_rewritten_too() -> None:
    async def missing(request: HttpRequest) -> HttpResponse:
        return HttpResponse("<h1>Not Found</h1>", status=404)

    middleware = ApiJsonErrorsMiddleware(missing)
    response = asyncio.run(middleware(RequestFactory().get("/api/v1/gone")))  # type: ignore[arg-type]
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


# --- CORS (an ASGI wrapper: the gateway's own routes never reach Django) -------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})


def _run(app: Any, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}


PREFLIGHT = {
    "Origin": "https://app.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
}


def test_a_preflight_is_answered_without_reaching_the_app() -> None:
    inner = Recorder()
    status, headers = _run(with_cors(inner, ["*"]), "OPTIONS", "/api/v1/chat/completions", PREFLIGHT)
    assert status == 204 and inner.calls == 0
    assert headers["access-control-allow-origin"] == "*"
    assert "POST" in headers["access-control-allow-methods"]
    allowed = headers["access-control-allow-headers"].split(", ")
    assert {"authorization", "content-type", "http-referer", "x-title", "x-stainless-os"} <= set(allowed)


def test_only_listed_origins_are_allowed_when_configured() -> None:
    app = with_cors(Recorder(), ["https://app.example"])
    status, headers = _run(app, "OPTIONS", "/api/v1/models", PREFLIGHT)
    assert status == 204 and headers["access-control-allow-origin"] == "https://app.example"
    assert headers["vary"] == "Origin"
    status, headers = _run(app, "OPTIONS", "/api/v1/models", {**PREFLIGHT, "Origin": "https://evil.example"})
    assert status == 403 and "access-control-allow-origin" not in headers
    status, headers = _run(app, "GET", "/api/v1/models", {"Origin": "https://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers


def test_responses_to_allowed_origins_carry_the_header_and_others_are_untouched() -> None:
    inner = Recorder()
    app = with_cors(inner, ["*"])
    status, headers = _run(app, "POST", "/api/v1/chat/completions", {"Origin": "https://app.example"})
    assert status == 200 and headers["access-control-allow-origin"] == "*" and inner.calls == 1
    _, headers = _run(app, "POST", "/api/v1/chat/completions", {})  # server-side SDKs send no Origin
    assert headers == {"content-type": "application/json"}
    _, headers = _run(app, "GET", "/credits", {"Origin": "https://app.example"})  # not the API
    assert "access-control-allow-origin" not in headers
    status, _ = _run(app, "OPTIONS", "/api/v1/models", {"Origin": "https://app.example"})  # not a preflight
    assert status == 200 and inner.calls == 4
