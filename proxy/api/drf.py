"""DRF conventions for the JSON API: bearer-key authentication and one error envelope."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response

from organizations.keys import key_hash
from organizations.models import ApiKey


class BearerKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer sk-or-v1-...`; `request.auth` is the ApiKey, `request.user` its creator."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise exceptions.AuthenticationFailed("No auth credentials found")
        api_key = ApiKey.objects.select_related("organization", "created_by").filter(hash=key_hash(token)).first()
        if api_key is None:
            raise exceptions.AuthenticationFailed("User not found.")
        if api_key.disabled:
            raise exceptions.AuthenticationFailed("This API key is disabled.")
        return api_key.created_by, api_key

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"


def error_body(code: int, message: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "metadata": metadata}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error in OpenRouter's envelope: {"error": {"code", "message", "metadata"}}."""
    # Imported here: rest_framework.views imports settings-driven modules that import this one.
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.NotAuthenticated):
        response.status_code = status.HTTP_401_UNAUTHORIZED
        message = "No auth credentials found"
    elif isinstance(exc, exceptions.ValidationError):
        message = _flatten(exc.detail)
    elif isinstance(exc, exceptions.APIException):
        message = str(exc.detail)
    else:
        message = str(exc)
    response.data = error_body(response.status_code, message)
    return response


def _flatten(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict):
        return "; ".join(_flatten(v, f"{prefix}{k}: ") for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(v, prefix) for v in detail)
    return f"{prefix}{detail}"
