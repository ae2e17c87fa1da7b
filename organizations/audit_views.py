"""The audit log page and its CSV export: owners and admins only; members and outsiders get 404.

A member is not told the log exists (404, like an outsider), because the log names people and keys.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from organizations.access import OrgRequest, org_page
from organizations.audit import CATEGORIES, AuditFilters, audit_csv_rows, audit_event_list
from organizations.models import AuditEvent

PAGE_SIZE = 50


def _require_manager(request: OrgRequest) -> None:
    if not request.membership.can_manage:
        raise Http404("No such page")


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _filters(request: OrgRequest) -> AuditFilters:
    """Query-string filters; an unknown value is ignored rather than an error."""
    category = request.GET.get("category", "")
    source = request.GET.get("source", "")
    since, until = _day(request.GET.get("since", "")), _day(request.GET.get("until", ""))
    tz = timezone.get_current_timezone()
    return AuditFilters(
        category=category if category in dict(CATEGORIES) else "",
        source=source if source in AuditEvent.Source.values else "",
        actor=request.GET.get("actor", "").strip()[:100],
        since=datetime.combine(since, time.min, tzinfo=tz) if since else None,
        # "until" is inclusive of that whole day.
        until=datetime.combine(until + timedelta(days=1), time.min, tzinfo=tz) if until else None,
    )


@org_page()
@require_GET
def audit_log(request: OrgRequest) -> HttpResponse:
    _require_manager(request)
    events = audit_event_list(organization=request.organization, filters=_filters(request)).select_related("actor")
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "organization": request.organization,
        "page": page,
        "categories": CATEGORIES,
        "sources": AuditEvent.Source.choices,
        "params": request.GET,
        "query": query.urlencode(),
        "active_nav": "organization",
    }
    return render(request, "organizations/audit.html", context)


@org_page()
@require_GET
def audit_export(request: OrgRequest) -> StreamingHttpResponse:
    """The filtered log as CSV, streamed: a year of events never sits in memory."""
    _require_manager(request)
    events = audit_event_list(organization=request.organization, filters=_filters(request))
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(audit_csv_rows(events), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{request.organization.slug}-{stamp}.csv"'
    return response
