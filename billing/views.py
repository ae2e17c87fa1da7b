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
)
from billing.selectors import HISTORY_DAYS_PER_PAGE, credit_history_days
from organizations.access import OrgRequest, org_page

SUMMARY_DAYS = 30


@org_page()
@require_GET
def credits_page(request: OrgRequest) -> HttpResponse:
    organization, membership = request.organization, request.membership
    raw_page = request.GET.get("history", "1")
    page = int(raw_page) if raw_page.isdecimal() and 0 < len(raw_page) < 5 else 1
    history, older = credit_history_days(organization=organization, page=max(page, 1), now=timezone.now())
    context = {
        "organization": organization,
        "membership": membership,
        "can_manage": membership.can_manage,
        "active_nav": "credits",
        "summary": credits_summary(organization=organization),
        "history": history,
        "history_page": max(page, 1),
        "history_older": older,
        "history_days": HISTORY_DAYS_PER_PAGE,
        "generations": generation_list_recent(organization=organization),
        "totals": generation_totals_since(
            organization=organization, since=timezone.now() - timedelta(days=SUMMARY_DAYS)
        ),
        "summary_days": SUMMARY_DAYS,
    }
    return render(request, "billing/credits.html", context)
