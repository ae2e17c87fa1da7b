"""The BYOK page at /o/<slug>/byok/: an organization's own provider keys.

Members see which providers have a key (provider and hint only); owners and admins add, replace,
disable and delete keys and choose whether the platform's key may be used as a fallback. The
secret is posted once, encrypted by `organizations.byok`, and never rendered or logged: the views
are marked sensitive so Django's error reports leave it out.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from organizations import byok
from organizations.models import Membership, Organization
from organizations.selectors import organization_get_for_user
from organizations.services import OrganizationError


class CredentialForm(forms.Form):
    provider_slug = forms.CharField(
        label="Provider", max_length=60, help_text="The provider's slug as in the catalog, e.g. openai, anthropic"
    )
    secret = forms.CharField(
        label="API key",
        max_length=byok.MAX_SECRET_CHARS,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted. It is never shown again, only its last four characters.",
    )


class FallbackForm(forms.Form):
    allow = forms.BooleanField(
        label="Fall back to the platform's key",
        required=False,
        help_text="When your key fails (or is disabled), serve the request with ours and charge credits as usual.",
    )


def _membership(request: HttpRequest, slug: str) -> tuple[Organization, Membership]:
    user = request.user
    assert isinstance(user, User)  # login_required
    return organization_get_for_user(user=user, slug=slug)


def _manager(request: HttpRequest, slug: str) -> Membership:
    _, membership = _membership(request, slug)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins can manage provider keys.")
    return membership


def _page_url(organization: Organization) -> str:
    return reverse("byok", kwargs={"slug": organization.slug})


def _render(
    request: HttpRequest,
    organization: Organization,
    membership: Membership,
    form: CredentialForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "organization": organization,
        "membership": membership,
        "can_manage": membership.can_manage,
        "credentials": byok.provider_credential_list(organization=organization),
        "form": form or CredentialForm(),
        "fallback_form": FallbackForm(initial={"allow": organization.byok_allow_platform_fallback}),
        "active_nav": "organization",
    }
    return render(request, "organizations/byok.html", context, status=status)


@login_required
@require_GET
def byok_page(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = _membership(request, slug)
    return _render(request, organization, membership)


@sensitive_variables("form")
@sensitive_post_parameters("secret")
@login_required
@require_POST
def byok_add(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _manager(request, slug)
    form = CredentialForm(request.POST)
    if form.is_valid():
        try:
            credential = byok.provider_credential_set(
                actor=membership,
                provider_slug=form.cleaned_data["provider_slug"],
                secret=form.cleaned_data["secret"],
            )
        except OrganizationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved the {credential.provider_slug} key ({credential.hint}).")
            return redirect(_page_url(membership.organization))
    # Re-rendered without the secret: PasswordInput(render_value=False) never echoes it.
    return _render(request, membership.organization, membership, form=form, status=400)


@login_required
@require_POST
def byok_toggle(request: HttpRequest, slug: str, credential_id: int) -> HttpResponse:
    membership = _manager(request, slug)
    credential = byok.provider_credential_get(organization=membership.organization, pk=credential_id)
    byok.provider_credential_set_enabled(actor=membership, credential=credential, is_enabled=not credential.is_enabled)
    return redirect(_page_url(membership.organization))


@login_required
@require_POST
def byok_delete(request: HttpRequest, slug: str, credential_id: int) -> HttpResponse:
    membership = _manager(request, slug)
    credential = byok.provider_credential_get(organization=membership.organization, pk=credential_id)
    byok.provider_credential_delete(actor=membership, credential=credential)
    messages.success(request, f"Deleted the {credential.provider_slug} key.")
    return redirect(_page_url(membership.organization))


@login_required
@require_POST
def byok_fallback(request: HttpRequest, slug: str) -> HttpResponse:
    membership = _manager(request, slug)
    form = FallbackForm(request.POST)
    form.is_valid()  # a lone optional checkbox is always valid
    byok.byok_fallback_set(actor=membership, allow=bool(form.cleaned_data.get("allow")))
    return redirect(_page_url(membership.organization))
