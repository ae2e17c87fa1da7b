"""The BYOK page at /o/<slug>/byok/: an organization's own provider keys.

Members see which providers have a key (provider and hint only); owners and admins add, replace,
disable and delete keys and choose whether the platform's key may be used as a fallback. The
secret is posted once, encrypted by `organizations.byok`, and never rendered or logged: the views
are marked sensitive so Django's error reports leave it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from organizations import byok
from organizations.access import OrgRequest, org_page
from organizations.models import Organization
from organizations.services import OrganizationError

# The provider catalog lives in proxy, a layer above this app, so the top layer plugs it in
# (openrouter_site.pages.byok, when the URLs load): a callable returning (slug, name) pairs.
provider_choices: Callable[[], list[tuple[str, str]]] | None = None
MIN_SECRET_CHARS = 16  # provider keys are long; a short paste is a mistake (a hint, a prefix)


class CredentialForm(forms.Form):
    provider_slug = forms.CharField(
        label="Provider", max_length=60, help_text="The provider's slug as in the catalog, e.g. openai, anthropic"
    )
    secret = forms.CharField(
        label="API key",
        min_length=MIN_SECRET_CHARS,
        max_length=byok.MAX_SECRET_CHARS,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted. It is never shown again, only its last four characters.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = provider_choices() if provider_choices is not None else []
        if choices:  # a select of the catalog's providers: an unknown slug is refused, not stored
            self.fields["provider_slug"] = forms.ChoiceField(
                label="Provider", choices=[("", "Choose a provider"), *choices], help_text="From the model catalog."
            )


class FallbackForm(forms.Form):
    allow = forms.BooleanField(
        label="Fall back to the platform's key",
        required=False,
        help_text="When your key fails (or is disabled), serve the request with ours and charge credits as usual.",
    )


MANAGE_DENIED = "Only owners and admins can manage provider keys."


def _page_url(organization: Organization) -> str:
    return reverse("organizations:byok", kwargs={"slug": organization.slug})


def _render(request: OrgRequest, form: CredentialForm | None = None, status: int = 200) -> HttpResponse:
    organization, membership = request.organization, request.membership
    context = {
        "organization": organization,
        "membership": membership,
        "can_manage": membership.can_manage,
        "credentials": byok.provider_credential_list(organization=organization),
        "form": form or CredentialForm(),
        "fallback_form": FallbackForm(initial={"allow": organization.byok_allow_platform_fallback}),
        "active_nav": "byok",
        "can_test": provider_choices is not None,  # the test action is served by the same top layer
    }
    return render(request, "organizations/byok.html", context, status=status)


@org_page()
@require_GET
def byok_page(request: OrgRequest) -> HttpResponse:
    return _render(request)


@sensitive_variables("form")
@sensitive_post_parameters("secret")
@org_page(manage=True, denied=MANAGE_DENIED)
@require_POST
def byok_add(request: OrgRequest) -> HttpResponse:
    form = CredentialForm(request.POST)
    if form.is_valid():
        try:
            credential = byok.provider_credential_set(
                actor=request.membership,
                provider_slug=form.cleaned_data["provider_slug"],
                secret=form.cleaned_data["secret"],
            )
        except OrganizationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved the {credential.provider_slug} key ({credential.hint}).")
            return redirect(_page_url(request.organization))
    # Re-rendered without the secret: PasswordInput(render_value=False) never echoes it.
    return _render(request, form=form, status=400)


@org_page(manage=True, denied=MANAGE_DENIED)
@require_POST
def byok_toggle(request: OrgRequest, credential_id: int) -> HttpResponse:
    credential = byok.provider_credential_get(organization=request.organization, pk=credential_id)
    byok.provider_credential_set_enabled(
        actor=request.membership, credential=credential, is_enabled=not credential.is_enabled
    )
    return redirect(_page_url(request.organization))


@org_page(manage=True, denied=MANAGE_DENIED)
@require_POST
def byok_delete(request: OrgRequest, credential_id: int) -> HttpResponse:
    credential = byok.provider_credential_get(organization=request.organization, pk=credential_id)
    byok.provider_credential_delete(actor=request.membership, credential=credential)
    messages.success(request, f"Deleted the {credential.provider_slug} key.")
    return redirect(_page_url(request.organization))


@org_page(manage=True, denied=MANAGE_DENIED)
@require_POST
def byok_fallback(request: OrgRequest) -> HttpResponse:
    form = FallbackForm(request.POST)
    form.is_valid()  # a lone optional checkbox is always valid
    byok.byok_fallback_set(actor=request.membership, allow=bool(form.cleaned_data.get("allow")))
    return redirect(_page_url(request.organization))
