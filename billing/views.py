"""The Credits page: balance, open reservations, recent ledger entries and generations, top-up panel.

Org members see it; an outsider gets 404 from the org-scoped selector before anything is read.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import User
from billing.api.selectors import generation_list_recent, generation_totals_since, ledger_entry_list_recent
from billing.selectors import credits_summary
from organizations.selectors import organization_get_for_user

SUMMARY_DAYS = 30


@login_required
@require_GET
def credits_page(request: HttpRequest, slug: str) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)  # login_required
    organization, membership = organization_get_for_user(user=user, slug=slug)
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
