"""The signed-in user's own settings. Sign-in, sign-up and passwords are allauth's views."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.forms import privacy_form_for


@login_required
@require_GET
def settings_page(request: HttpRequest) -> HttpResponse:
    membership = getattr(request, "current_membership", None)
    context = {
        "active_nav": "settings",
        "privacy_form": privacy_form_for(membership) if membership is not None and membership.can_manage else None,
    }
    return render(request, "accounts/settings.html", context)
