"""The Keys page at /o/<slug>/keys/ and its htmx row actions, and the site's home (`/`, `/keys/`).

A page above the apps because each row shows what the key has spent from billing's live counters
next to the key itself (organizations). Members see the keys; only owners and admins create, edit,
disable or delete them (403). Row actions answer an htmx request with the re-rendered row and a
plain one with a redirect or the full page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.api.selectors import key_usage_many
from organizations import selectors, services
from organizations.access import CurrentOrgRequest, OrgRequest, org_page
from organizations.forms import KeyCreateForm, KeyLimitForm, KeyRenameForm
from organizations.models import ApiKey, Organization
from organizations.services import IssuedKey

KEYS_TEMPLATE = "organizations/keys.html"


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _keys_url(organization: Organization) -> str:
    return reverse("pages:keys", kwargs={"slug": organization.slug})


@login_required
@require_GET
def home(request: CurrentOrgRequest) -> HttpResponse:
    """`/` and `/keys/`: the signed-in user's current organization's keys."""
    organization = request.current_organization
    if organization is None:
        return redirect("pages:settings")
    return redirect(_keys_url(organization))


@dataclass(frozen=True)
class KeyRow:
    """A key as the table shows it: what it has spent and, under a limit, what is left this window."""

    key: ApiKey
    usage_nanos: int
    limit_remaining_nanos: int | None


def _key_rows(api_keys: list[ApiKey]) -> list[KeyRow]:
    # The gate's live counters include usage not yet settled, so the page agrees with GET /api/v1/key.
    usage = key_usage_many(api_keys)
    rows = []
    for api_key in api_keys:
        used = usage[api_key.pk]
        remaining = None if api_key.limit_nanos is None else max(api_key.limit_nanos - used.for_limit(api_key), 0)
        rows.append(KeyRow(key=api_key, usage_nanos=used.total, limit_remaining_nanos=remaining))
    return rows


def _keys_page(request: OrgRequest, *, partial: str | None = None, **extra: Any) -> HttpResponse:
    can_manage = request.membership.can_manage
    context: dict[str, Any] = {
        "organization": request.organization,
        "can_manage": can_manage,
        "rows": _key_rows(list(selectors.api_key_list(organization=request.organization))),
        "create_form": KeyCreateForm() if can_manage else None,
        "active_nav": "keys",
        **extra,
    }
    template = f"{KEYS_TEMPLATE}#{partial}" if partial else KEYS_TEMPLATE
    return render(request, template, context)


def _key_row(request: OrgRequest, api_key: ApiKey, *, row: str = "key-row", **extra: Any) -> HttpResponse:
    context = {
        "organization": request.organization,
        "key": api_key,
        "row": _key_rows([api_key])[0],
        "can_manage": request.membership.can_manage,
        **extra,
    }
    return render(request, f"{KEYS_TEMPLATE}#{row}", context)


@org_page()
@require_http_methods(["GET", "POST"])
def keys(request: OrgRequest) -> HttpResponse:
    panel = "keys-panel" if _is_htmx(request) else None
    if request.method == "GET":
        return _keys_page(request)
    # One URL for the list (every member) and for creating (owners and admins), as the form posts back here.
    if not request.membership.can_manage:
        raise PermissionDenied("Only owners and admins can do this.")
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, partial=panel, create_form=form)
    issued: IssuedKey = services.api_key_create(
        organization=request.organization,
        name=form.cleaned_data["name"],
        created_by=request.user,
        limit_nanos=form.cleaned_data["limit_nanos"],
        limit_reset=form.cleaned_data["limit_reset_value"],
        is_management=form.cleaned_data["is_management"],
    )
    # Rendered, not redirected: the plaintext exists only in this response.
    response = _keys_page(request, partial=panel, issued=issued)
    response["Cache-Control"] = "no-store"
    return response


def _key_edit(
    request: OrgRequest,
    key_id: UUID,
    *,
    mode: str,
    blank_form: Callable[[ApiKey], forms.Form],
    bound_form: Callable[[QueryDict], forms.Form],
    apply: Callable[[ApiKey, dict[str, Any]], object],
) -> HttpResponse:
    """Shared GET/POST flow for the rename and limit row editors (htmx row swap or full page)."""
    api_key = selectors.api_key_get(organization=request.organization, public_id=str(key_id))
    form = blank_form(api_key) if request.method == "GET" else bound_form(request.POST)
    if request.method == "POST" and form.is_valid():
        apply(api_key, form.cleaned_data)
        if _is_htmx(request):
            return _key_row(request, api_key)
        messages.success(request, f"Saved “{api_key.name}”.")
        return redirect(_keys_url(request.organization))
    if _is_htmx(request):
        return _key_row(request, api_key, row=f"key-row-{mode}", edit_form=form)
    return _keys_page(request, editing=api_key, edit_mode=mode, edit_form=form)


@org_page(manage=True)
@require_http_methods(["GET", "POST"])
def key_rename(request: OrgRequest, key_id: UUID) -> HttpResponse:
    return _key_edit(
        request,
        key_id,
        mode="rename",
        blank_form=lambda k: KeyRenameForm(initial={"name": k.name}),
        bound_form=KeyRenameForm,
        apply=lambda k, data: services.api_key_update(api_key=k, name=data["name"]),
    )


@org_page(manage=True)
@require_http_methods(["GET", "POST"])
def key_limit(request: OrgRequest, key_id: UUID) -> HttpResponse:
    return _key_edit(
        request,
        key_id,
        mode="limit",
        blank_form=KeyLimitForm.for_key,
        bound_form=KeyLimitForm,
        apply=lambda k, data: services.api_key_update(
            api_key=k,
            limit_nanos=data["limit_nanos"],
            limit_reset=data["limit_reset_value"],
            include_byok_in_limit=data["include_byok_in_limit"],
        ),
    )


@org_page()
@require_GET
def key_row(request: OrgRequest, key_id: UUID) -> HttpResponse:
    """The plain row again: what "Cancel" in a row editor swaps back in."""
    api_key = selectors.api_key_get(organization=request.organization, public_id=str(key_id))
    if not _is_htmx(request):
        return redirect(_keys_url(request.organization))
    return _key_row(request, api_key)


@org_page(manage=True)
@require_POST
def key_toggle(request: OrgRequest, key_id: UUID) -> HttpResponse:
    api_key = selectors.api_key_get(organization=request.organization, public_id=str(key_id))
    services.api_key_update(api_key=api_key, disabled=not api_key.disabled)
    if _is_htmx(request):
        return _key_row(request, api_key)
    messages.success(request, f"“{api_key.name}” is now {'disabled' if api_key.disabled else 'enabled'}.")
    return redirect(_keys_url(request.organization))


@org_page(manage=True)
@require_POST
def key_delete(request: OrgRequest, key_id: UUID) -> HttpResponse:
    api_key = selectors.api_key_get(organization=request.organization, public_id=str(key_id))
    name = api_key.name
    services.api_key_delete(api_key=api_key)
    if _is_htmx(request):
        return HttpResponse("")  # the row is swapped for nothing
    messages.success(request, f"Deleted “{name}”.")
    return redirect(_keys_url(request.organization))
