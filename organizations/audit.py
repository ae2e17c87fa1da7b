"""The audit log: who changed what in an organization, when, from where, before and after.

Services call `audit_record(...)` once per change, inside their own transaction, so a change and its
record commit or roll back together. They do not pass the actor, source or IP: those come from the
audit context, set once per entry point:

- browser pages, the management API and the admin: `AuditContextMiddleware` (source by path; the
  actor is the signed-in user, or the API key DRF put on the request, resolved when recording);
- management commands: `@audited_command` on `handle` (source "cli", the OS user as actor label);
- anything else (Celery, webhooks): source "system".

A service that knows its actor better (a `Membership`) may pass `actor=` explicitly.
"""

from __future__ import annotations

import csv
import functools
import os
import pwd
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import User
from organizations.models import AuditEvent, Organization

Source = AuditEvent.Source

# Action families for the page's filter: the prefix before the dot.
CATEGORIES: list[tuple[str, str]] = [
    ("organization", "Organization"),
    ("member", "Members and roles"),
    ("invitation", "Invitations"),
    ("key", "API keys and limits"),
    ("byok", "Provider keys (BYOK)"),
    ("settings", "Settings"),
    ("credits", "Credit grants"),
    ("refund", "Refunds"),
]


@dataclass(frozen=True)
class AuditContext:
    source: str
    ip: str | None = None
    label: str = ""
    request: HttpRequest | None = None


_context: ContextVar[AuditContext | None] = ContextVar("audit_context", default=None)


@contextmanager
def audit_context(
    *, source: str, ip: str | None = None, label: str = "", request: HttpRequest | None = None
) -> Iterator[AuditContext]:
    ctx = AuditContext(source=source, ip=ip, label=label, request=request)
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def _source_for_path(path: str) -> str:
    if path.startswith("/admin/"):
        return Source.ADMIN
    if path.startswith("/api/"):
        return Source.API
    return Source.DASHBOARD


class AuditContextMiddleware:
    """Every Django request records its changes with its source, client IP and (lazily) its actor.

    REMOTE_ADDR is the peer as uvicorn reports it; run uvicorn with `--proxy-headers` and
    `--forwarded-allow-ips` behind a trusted proxy so it is the client, not the proxy.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        ip = request.META.get("REMOTE_ADDR") or None
        with audit_context(source=_source_for_path(request.path), ip=ip, request=request):
            return self.get_response(request)


def _os_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


P = ParamSpec("P")
R = TypeVar("R")


def audited_command(handle: Callable[P, R]) -> Callable[P, R]:
    """Decorate a management command's `handle`: its changes are recorded with source "cli"."""

    @functools.wraps(handle)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with audit_context(source=Source.CLI, label=f"cli:{_os_user()}"):
            return handle(*args, **kwargs)

    return wrapper


def _actor_from_context(ctx: AuditContext | None) -> tuple[User | None, str]:
    if ctx is None:
        return None, ""
    request = ctx.request
    if request is not None:
        # The management API: DRF copies the authenticated key onto the HttpRequest as `auth` (and its
        # creator as `user`); the key is the actor people need to see.
        key = getattr(request, "auth", None)
        label = getattr(key, "label", None)
        if label:
            creator = getattr(key, "created_by", None)
            return (creator if isinstance(creator, User) else None), f"api key {getattr(key, 'name', '')} ({label})"
        user = getattr(request, "user", None)
        if isinstance(user, User):
            return user, user.email
    return None, ctx.label


def audit_record(
    *,
    organization: Organization,
    action: str,
    target: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor: User | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the service's transaction, after the change."""
    ctx = _context.get()
    ctx_actor, label = _actor_from_context(ctx)
    if actor is not None and actor != ctx_actor:
        label = actor.email
    source = ctx.source if ctx is not None else Source.SYSTEM
    if source == Source.DASHBOARD and ctx_actor is None:
        source = Source.SYSTEM  # nobody signed in: a webhook (Stripe), not a person on a page
    return AuditEvent.objects.create(
        organization=organization,
        action=action,
        target=str(target)[:200],
        actor=actor or ctx_actor,
        actor_label=label[:200],
        source=source,
        ip=ctx.ip if ctx is not None else None,
        before=before,
        after=after,
    )


def _plain(value: object) -> object:
    # Related objects are shown as people see them (an email, a name), not as ids.
    return str(value) if isinstance(value, Model) else value


def audit_snapshot(obj: object, fields: Sequence[str]) -> dict[str, Any]:
    """The named fields of `obj`, for `before=`/`after=`. Never pass a secret's field here."""
    return {name: _plain(getattr(obj, name)) for name in fields}


# --- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    category: str = ""
    source: str = ""
    actor: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_event_list(*, organization: Organization, filters: AuditFilters | None = None) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(organization=organization)
    f = filters or AuditFilters()
    if f.category:
        qs = qs.filter(action__startswith=f"{f.category}.")
    if f.source:
        qs = qs.filter(source=f.source)
    if f.actor:
        qs = qs.filter(actor_label__icontains=f.actor)
    if f.since is not None:
        qs = qs.filter(created_at__gte=f.since)
    if f.until is not None:
        qs = qs.filter(created_at__lt=f.until)
    return qs.order_by("-created_at", "-pk")


CSV_HEADER = ["time", "action", "target", "actor", "source", "ip", "before", "after"]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell starting with = + - @ is a formula to spreadsheets: quote it so an export opened in one
    # cannot run what a key name or target contains.
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def audit_csv_rows(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """CSV lines for a streamed export; reads the rows in chunks, never all at once."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for event in events.iterator(chunk_size=500):
        yield writer.writerow(
            [
                _cell(event.created_at.isoformat()),
                _cell(event.action),
                _cell(event.target),
                _cell(event.actor_label),
                _cell(event.source),
                _cell(event.ip),
                _cell(json.dumps(event.before, cls=DjangoJSONEncoder) if event.before is not None else ""),
                _cell(json.dumps(event.after, cls=DjangoJSONEncoder) if event.after is not None else ""),
            ]
        )


# --- retention -----------------------------------------------------------------------------------


def audit_purge(*, now: datetime | None = None) -> int:
    """Delete events older than AUDIT_RETENTION_DAYS (0 keeps them forever). Returns how many went."""
    days = settings.AUDIT_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
