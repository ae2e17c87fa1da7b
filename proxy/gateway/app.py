"""The gateway's ASGI application (placeholder until the hot path lands)."""

from __future__ import annotations

from typing import Any


def build_application(django_app: Any) -> Any:
    return django_app
