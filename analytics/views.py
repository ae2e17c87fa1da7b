"""Activity: an organization's spend, tokens and requests by model, key, provider and app."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics import selectors
from organizations.access import OrgRequest, org_page


@org_page()
@require_GET
def activity(request: OrgRequest) -> HttpResponse:
    range_key = request.GET.get("range", "7d")
    range_key = range_key if range_key in selectors.RANGES else "7d"
    group = request.GET.get("group", "model")
    group = group if group in selectors.GROUPS else "model"
    since = selectors.activity_since(range_key)
    organization = request.organization
    context = {
        "organization": organization,
        "membership": request.membership,
        "active_nav": "activity",
        "range": range_key,
        "ranges": list(selectors.RANGES),
        "group": group,
        "groups": list(selectors.GROUPS),
        "totals": selectors.activity_totals(organization=organization, since=since),
        "grouped": selectors.activity_grouped(organization=organization, since=since, group=group),
        "daily": selectors.activity_daily(organization=organization, since=since),
        "recent": selectors.generation_recent(organization=organization),
    }
    return render(request, "analytics/activity.html", context)
