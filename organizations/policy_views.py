"""The data policy page at /o/<slug>/policy/: the organization's routing policy and each key's models.

Every member sees the policy (it decides where their requests may go); only owners and admins change
it (403), and an outsider gets 404 from `org_page` before any form is read.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from organizations import selectors
from organizations.access import OrgRequest, org_page
from organizations.forms import DataPolicyForm, KeyModelsForm
from organizations.models import Organization
from organizations.policy import api_key_set_allowed_models, organization_set_data_policy
from organizations.services import OrganizationError


def _policy_url(organization: Organization) -> str:
    return reverse("organizations:policy", kwargs={"slug": organization.slug})


def _page(request: OrgRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    organization = request.organization
    context: dict[str, Any] = {
        "organization": organization,
        "can_manage": request.membership.can_manage,
        "form": DataPolicyForm.for_organization(organization),
        "keys": list(selectors.api_key_list(organization=organization).filter(is_management=False)),
        "active_nav": "organization",
        **extra,
    }
    return render(request, "organizations/policy.html", context, status=status)


@org_page()
@require_GET
def policy_page(request: OrgRequest) -> HttpResponse:
    return _page(request)


@org_page(manage=True)
@require_POST
def policy_update(request: OrgRequest) -> HttpResponse:
    form = DataPolicyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            organization_set_data_policy(
                actor=request.membership,
                deny_data_collection=bool(data["deny_data_collection"]),
                zdr_only=bool(data["zdr_only"]),
                allowed_providers=data["allowed_providers"],
                blocked_providers=data["blocked_providers"],
                allowed_models=data["allowed_models"],
            )
        except OrganizationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Data policy saved. It applies to every key's next request.")
            return redirect(_policy_url(request.organization))
    return _page(request, form=form, status=400)


@org_page(manage=True)
@require_POST
def key_models(request: OrgRequest, key_id: UUID) -> HttpResponse:
    api_key = selectors.api_key_get(organization=request.organization, public_id=str(key_id))
    form = KeyModelsForm(request.POST)
    if form.is_valid():
        try:
            api_key_set_allowed_models(
                actor=request.membership, api_key=api_key, allowed_models=form.cleaned_data["allowed_models"]
            )
        except OrganizationError as exc:
            messages.error(request, str(exc))
            return _page(request, status=400)
        messages.success(request, f"Saved the models “{api_key.name}” may use.")
    return redirect(_policy_url(request.organization))
