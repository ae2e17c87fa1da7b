"""Activity: per-request history for an organization. A shell until usage records land here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from organizations.views import organization_for_request


@login_required
@require_GET
def activity(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = organization_for_request(request, slug)
    context = {"organization": organization, "membership": membership, "active_nav": "activity"}
    return render(request, "analytics/activity.html", context)
