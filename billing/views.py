"""The Credits page: balance, open reservations, recent ledger entries and generations, top-up panel.

Org members see it; an outsider gets 404 from `org_page` before anything is read.
"""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing.api.selectors import (
    credits_summary,
    generation_list_recent,
    generation_totals_since,
    ledger_entry_list_recent,
)
from organizations.access import OrgRequest, org_page

SUMMARY_DAYS = 30


@org_page()
@require_GET
def credits_page(request: OrgRequest) -> HttpResponse:
    organization, membership = request.organization, request.membership
    context = {
        "organization": organization,
        "membership": membership,
        "can_manage": membership.can_manage,
        "active_nav": "credits",
        "summary": credits_summary(organization=organization),
        "entries": ledger_entry_list_recent(organization=organization),
        "generations": generation_list_recent(organization=organization),
        "totals": generation_totals_since(
            organization=organization, since=timezone.now() - timedelta(days=SUMMARY_DAYS)
        ),
        "summary_days": SUMMARY_DAYS,
    }
    return render(request, "billing/credits.html", context)
