"""Carrying the core's `reasoning_details` through a skin that has no field for their provenance.

Anthropic thinking blocks have only `thinking` + `signature` (and `redacted_thinking` only `data`);
the Responses reasoning item only `encrypted_content`. A detail from another upstream family (a
Gemini thought signature, OpenAI encrypted reasoning) still has to come back unchanged on the next
turn, so it travels packed into that opaque string: a marker, then the detail as base64 JSON.
Clients pass these strings back verbatim; an upstream never sees the packed form.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

ANTHROPIC_FORMAT = "anthropic-claude-v1"
_MARK = "orpk1."


def pack(detail: dict[str, Any]) -> str:
    """An opaque string that `unpack` turns back into the detail (its text left out: it travels beside it)."""
    kept = {k: v for k, v in detail.items() if k not in ("text", "index") and v is not None}
    return _MARK + base64.urlsafe_b64encode(orjson.dumps(kept)).decode()


def unpack(value: str) -> dict[str, Any] | None:
    if not value.startswith(_MARK):
        return None
    try:
        detail = orjson.loads(base64.urlsafe_b64decode(value[len(_MARK) :]))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return None
    return detail if isinstance(detail, dict) and isinstance(detail.get("type"), str) else None


def is_native(detail: dict[str, Any], native_format: str) -> bool:
    return detail.get("format") in (native_format, None)


def pack_all(details: list[dict[str, Any]]) -> str:
    """A whole turn's reasoning details, text included, as one opaque string (Responses `encrypted_content`)."""
    return _MARK + base64.urlsafe_b64encode(orjson.dumps(details)).decode()


def unpack_all(value: str) -> list[dict[str, Any]] | None:
    if not value.startswith(_MARK):
        return None
    try:
        details = orjson.loads(base64.urlsafe_b64decode(value[len(_MARK) :]))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return None
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("type"), str) for d in details
    ):
        return None
    return details
