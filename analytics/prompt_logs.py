"""An organization's prompt logs (billing/prompt_log.py): export as JSON lines and delete in full.

Owners only (admins and members get 403, outsiders 404 from `org_page`). Thin views: the services
check the role again and audit each export and deletion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from billing.prompt_log import prompt_logs_delete_all, prompt_logs_export
from organizations.access import OrgRequest, org_page
from organizations.models import Membership

OWNERS_ONLY = "Only owners can export or delete the organization's prompt logs."


def prompt_log_display(record: dict[str, Any] | None) -> dict[str, str] | None:
    """The decrypted record as indented JSON for the generation page (autoescaped there)."""
    if record is None:
        return None
    if record.get("truncated"):
        return {
            "request": str(record.get("request_json_prefix", "")),
            "response": str(record.get("response_json_prefix", "")),
        }
    pretty = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    return {
        "request": orjson.dumps(record.get("request"), option=pretty).decode(),
        "response": orjson.dumps(record.get("response"), option=pretty).decode(),
    }


def _require_owner(request: OrgRequest) -> None:
    if request.membership.role != Membership.Role.OWNER:
        raise PermissionDenied(OWNERS_ONLY)


@org_page(manage=True, denied=OWNERS_ONLY)
@require_GET
def prompt_logs_export_view(request: OrgRequest) -> StreamingHttpResponse:
    """JSON lines, streamed: under ASGI an async iterator is sent chunk by chunk, each chunk one query."""
    _require_owner(request)
    chunks = prompt_logs_export(actor=request.membership)
    next_chunk = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)

    async def lines() -> AsyncIterator[bytes]:
        while (chunk := await next_chunk()) is not None:
            yield chunk

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{request.organization.slug}-prompt-logs-{stamp}.jsonl"'
    response["Cache-Control"] = "private, no-store"
    return response


@org_page(manage=True, denied=OWNERS_ONLY)
@require_POST
def prompt_logs_delete_view(request: OrgRequest) -> HttpResponse:
    _require_owner(request)
    deleted = prompt_logs_delete_all(actor=request.membership)
    messages.success(request, f"Deleted {deleted} stored prompt log(s).")
    return redirect("pages:settings")
