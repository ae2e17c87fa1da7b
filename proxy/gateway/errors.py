"""The gateway's error type and OpenRouter's error envelope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from proxy.skins.base import Skin

ERROR_TYPES = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    429: "rate_limit_exceeded",
    500: "server",
    502: "provider_unavailable",
    503: "provider_overloaded",
}


class GatewayError(Exception):
    """Anything the gateway answers with an error envelope instead of a completion."""

    def __init__(
        self,
        status: int,
        message: str,
        metadata: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = dict(metadata) if metadata else None
        self.headers = dict(headers) if headers else {}

    def envelope(self) -> dict[str, Any]:
        return {"error": {"code": self.status, "message": self.message, "metadata": self.metadata}}

    def body(self, skin: Skin | None = None) -> bytes:
        """The envelope, or the skin's error shape for a request that came in on a skin."""
        if skin is not None:
            return orjson.dumps(skin.render_error(self.status, self.message, self.metadata))
        return orjson.dumps(self.envelope())
