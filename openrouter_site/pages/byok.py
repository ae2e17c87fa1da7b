"""BYOK pieces that need the provider catalog: the form's provider select and "test this key".

The BYOK page itself is organizations.byok_views; organizations sits below proxy (which owns the catalog
and the upstream transport), so this top-layer module plugs the catalog into that form and serves the
test action, which lists the provider's models with the organization's own key.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from organizations import byok, byok_views
from organizations.access import OrgRequest, org_page
from proxy.byok_probe import byok_probe, provider_selects

byok_views.provider_choices = provider_selects


@org_page(manage=True, denied=byok_views.MANAGE_DENIED)
@require_POST
def byok_test(request: OrgRequest, credential_id: int) -> HttpResponse:
    credential = byok.provider_credential_get(organization=request.organization, pk=credential_id)
    result = async_to_sync(byok_probe)(credential)
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect(reverse("organizations:byok", kwargs={"slug": request.organization.slug}))
