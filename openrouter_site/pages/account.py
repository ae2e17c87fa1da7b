"""The signed-in user's Settings page: their account, and the current organization's privacy switch.

Sign-in, sign-up and passwords are allauth's views; the switch posts to organizations' privacy view.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing.prompt_log import prompt_log_count, prompt_logging_available
from organizations.access import CurrentOrgRequest
from organizations.forms import PrivacyForm
from organizations.models import Membership


@login_required
@require_GET
def settings_page(request: CurrentOrgRequest) -> HttpResponse:
    membership = request.current_membership
    organization = membership.organization if membership is not None else None
    context = {
        "active_nav": "settings",
        # What the privacy card says depends on whether logs can be encrypted at all, and how many exist.
        "prompt_log_available": prompt_logging_available(),
        "prompt_log_count": prompt_log_count(organization=organization)
        if organization is not None and membership is not None and membership.can_manage
        else 0,
        "is_owner": membership is not None and membership.role == Membership.Role.OWNER,
        # Members see the setting's state; only owners and admins get the form.
        "privacy_form": PrivacyForm.for_organization(membership.organization)
        if membership is not None and membership.can_manage
        else None,
    }
    return render(request, "accounts/settings.html", context)
