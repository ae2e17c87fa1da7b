"""Browser pages for an organization: keys, members, invitations, the switcher.

Every org URL resolves the organization through `organization_get_for_user`, so an outsider gets a
404 before any form is read. Members see keys and members; only owners and admins change them (403).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import User
from billing.api.selectors import key_usage_many
from organizations import selectors, services
from organizations.access import SESSION_KEY, CurrentOrgRequest
from organizations.forms import (
    InviteForm,
    KeyCreateForm,
    KeyLimitForm,
    KeyRenameForm,
    OrganizationCreateForm,
    PrivacyForm,
    RoleForm,
)
from organizations.models import ApiKey, Membership, Organization
from organizations.services import IssuedKey, OrganizationError

KEYS_TEMPLATE = "organizations/keys.html"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # login_required guarantees a real user
    return user


def organization_for_request(request: HttpRequest, slug: str) -> tuple[Organization, Membership]:
    """The org behind an org URL (404 for outsiders); viewing an org makes it the current one."""
    organization, membership = selectors.organization_get_for_user(user=_user(request), slug=slug)
    current = cast(CurrentOrgRequest, request)
    current.current_organization, current.current_membership = organization, membership
    if request.session.get(SESSION_KEY) != organization.slug:
        request.session[SESSION_KEY] = organization.slug
    return organization, membership


def _require_manage(membership: Membership) -> None:
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins can do this.")


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _keys_url(organization: Organization) -> str:
    return reverse("organizations:keys", kwargs={"slug": organization.slug})


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """`/` and `/keys/`: the signed-in user's current organization's keys."""
    organization = cast(CurrentOrgRequest, request).current_organization
    if organization is None:
        return redirect("accounts:settings")
    return redirect(_keys_url(organization))


# --- Keys ---------------------------------------------------------------------------------------


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


def _keys_page(
    request: HttpRequest,
    organization: Organization,
    membership: Membership,
    *,
    partial: str | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    context: dict[str, Any] = {
        "organization": organization,
        "can_manage": membership.can_manage,
        "rows": _key_rows(list(selectors.api_key_list(organization=organization))),
        "create_form": KeyCreateForm() if membership.can_manage else None,
        "active_nav": "keys",
        **extra,
    }
    template = f"{KEYS_TEMPLATE}#{partial}" if partial else KEYS_TEMPLATE
    return render(request, template, context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest, slug: str) -> HttpResponse:
    organization, membership = organization_for_request(request, slug)
    panel = "keys-panel" if _is_htmx(request) else None
    if request.method == "GET":
        return _keys_page(request, organization, membership)
    _require_manage(membership)
    form = KeyCreateForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, organization, membership, partial=panel, create_form=form)
    issued: IssuedKey = services.api_key_create(
        organization=organization,
        name=form.cleaned_data["name"],
        created_by=_user(request),
        limit_nanos=form.cleaned_data["limit_nanos"],
        limit_reset=form.cleaned_data["limit_reset_value"],
        is_management=form.cleaned_data["is_management"],
    )
    # Rendered, not redirected: the plaintext exists only in this response.
    response = _keys_page(request, organization, membership, partial=panel, issued=issued)
    response["Cache-Control"] = "no-store"
    return response


def _key_for_manage(request: HttpRequest, slug: str, key_id: UUID) -> tuple[Organization, Membership, ApiKey]:
    organization, membership = organization_for_request(request, slug)
    api_key = selectors.api_key_get(organization=organization, public_id=str(key_id))
    _require_manage(membership)
    return organization, membership, api_key


def _key_row(
    request: HttpRequest, organization: Organization, api_key: ApiKey, *, row: str = "key-row", **extra: Any
) -> HttpResponse:
    context = {
        "organization": organization,
        "key": api_key,
        "row": _key_rows([api_key])[0],
        "can_manage": True,
        **extra,
    }
    return render(request, f"{KEYS_TEMPLATE}#{row}", context)


def _key_edit(
    request: HttpRequest,
    slug: str,
    key_id: UUID,
    *,
    mode: str,
    blank_form: Callable[[ApiKey], forms.Form],
    bound_form: Callable[[QueryDict], forms.Form],
    apply: Callable[[ApiKey, dict[str, Any]], object],
) -> HttpResponse:
    """Shared GET/POST flow for the rename and limit row editors (htmx row swap or full page)."""
    organization, membership, api_key = _key_for_manage(request, slug, key_id)
    form = blank_form(api_key) if request.method == "GET" else bound_form(request.POST)
    if request.method == "POST" and form.is_valid():
        apply(api_key, form.cleaned_data)
        if _is_htmx(request):
            return _key_row(request, organization, api_key)
        messages.success(request, f"Saved “{api_key.name}”.")
        return redirect(_keys_url(organization))
    if _is_htmx(request):
        return _key_row(request, organization, api_key, row=f"key-row-{mode}", edit_form=form)
    return _keys_page(request, organization, membership, editing=api_key, edit_mode=mode, edit_form=form)


@login_required
@require_http_methods(["GET", "POST"])
def key_rename(request: HttpRequest, slug: str, key_id: UUID) -> HttpResponse:
    return _key_edit(
        request,
        slug,
        key_id,
        mode="rename",
        blank_form=lambda k: KeyRenameForm(initial={"name": k.name}),
        bound_form=KeyRenameForm,
        apply=lambda k, data: services.api_key_update(api_key=k, name=data["name"]),
    )


@login_required
@require_http_methods(["GET", "POST"])
def key_limit(request: HttpRequest, slug: str, key_id: UUID) -> HttpResponse:
    return _key_edit(
        request,
        slug,
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


@login_required
@require_GET
def key_row(request: HttpRequest, slug: str, key_id: UUID) -> HttpResponse:
    """The plain row again: what "Cancel" in a row editor swaps back in."""
    organization, membership = organization_for_request(request, slug)
    api_key = selectors.api_key_get(organization=organization, public_id=str(key_id))
    if not _is_htmx(request):
        return redirect(_keys_url(organization))
    return render(
        request,
        f"{KEYS_TEMPLATE}#key-row",
        {
            "organization": organization,
            "key": api_key,
            "row": _key_rows([api_key])[0],
            "can_manage": membership.can_manage,
        },
    )


@login_required
@require_POST
def key_toggle(request: HttpRequest, slug: str, key_id: UUID) -> HttpResponse:
    organization, _membership, api_key = _key_for_manage(request, slug, key_id)
    services.api_key_update(api_key=api_key, disabled=not api_key.disabled)
    if _is_htmx(request):
        return _key_row(request, organization, api_key)
    messages.success(request, f"“{api_key.name}” is now {'disabled' if api_key.disabled else 'enabled'}.")
    return redirect(_keys_url(organization))


@login_required
@require_POST
def key_delete(request: HttpRequest, slug: str, key_id: UUID) -> HttpResponse:
    organization, _membership, api_key = _key_for_manage(request, slug, key_id)
    name = api_key.name
    services.api_key_delete(api_key=api_key)
    if _is_htmx(request):
        return HttpResponse("")  # the row is swapped for nothing
    messages.success(request, f"Deleted “{name}”.")
    return redirect(_keys_url(organization))


# --- Organization: members and invitations -------------------------------------------------------


def _organization_page(
    request: HttpRequest, organization: Organization, membership: Membership, *, status: int = 200, **extra: Any
) -> HttpResponse:
    context: dict[str, Any] = {
        "organization": organization,
        "membership": membership,
        "can_manage": membership.can_manage,
        "members": selectors.membership_list(organization=organization),
        "invitations": selectors.invitation_list_open(organization=organization) if membership.can_manage else [],
        "invite_form": InviteForm(),
        "create_form": OrganizationCreateForm(),
        "roles": Membership.Role.choices,
        "active_nav": "organization",
        **extra,
    }
    return render(request, "organizations/organization.html", context, status=status)


def _organization_url(organization: Organization) -> str:
    return reverse("organizations:organization", kwargs={"slug": organization.slug})


@login_required
@require_GET
def organization(request: HttpRequest, slug: str) -> HttpResponse:
    org, membership = organization_for_request(request, slug)
    return _organization_page(request, org, membership)


@login_required
@require_POST
def invite(request: HttpRequest, slug: str) -> HttpResponse:
    org, membership = organization_for_request(request, slug)
    _require_manage(membership)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create_and_send(
                actor=membership,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                accept_url_for=lambda token: request.build_absolute_uri(
                    reverse("organizations:invitation_accept", kwargs={"token": token})
                ),
            )
        except OrganizationError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
            return redirect(_organization_url(org))
    return _organization_page(request, org, membership, invite_form=form, status=400)


@login_required
@require_POST
def member_role(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    org, membership = organization_for_request(request, slug)
    target = selectors.membership_get_in_organization(organization=org, membership_id=membership_id)
    _require_manage(membership)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, admin or member.")
        return redirect(_organization_url(org))
    try:
        services.membership_set_role(actor=membership, membership=target, role=form.cleaned_data["role"])
    except OrganizationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display().lower()}.")
    return redirect(_organization_url(org))


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, membership_id: int) -> HttpResponse:
    org, membership = organization_for_request(request, slug)
    target = selectors.membership_get_in_organization(organization=org, membership_id=membership_id)
    leaving = target.pk == membership.pk
    if not leaving:
        _require_manage(membership)
    try:
        services.membership_remove(actor=membership, membership=target)
    except OrganizationError as exc:
        messages.error(request, str(exc))
        return redirect(_organization_url(org))
    if leaving:
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {org.name}.")
        return redirect("organizations:home")
    messages.success(request, f"Removed {target.user.email}.")
    return redirect(_organization_url(org))


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, slug: str, invitation_id: UUID) -> HttpResponse:
    org, membership = organization_for_request(request, slug)
    invitation = selectors.invitation_get(organization=org, public_id=str(invitation_id))
    _require_manage(membership)
    services.invitation_revoke(actor=membership, invitation=invitation)
    messages.success(request, f"Revoked the invitation for {invitation.email}.")
    return redirect(_organization_url(org))


@login_required
@require_POST
def privacy(request: HttpRequest, slug: str) -> HttpResponse:
    _org, membership = organization_for_request(request, slug)
    _require_manage(membership)
    form = PrivacyForm(request.POST)
    form.is_valid()  # a single checkbox: absent means off, so it is always valid
    enabled = bool(form.cleaned_data.get("log_prompts"))
    services.organization_set_log_prompts(actor=membership, enabled=enabled)
    messages.success(request, f"Prompt and completion logging is {'on' if enabled else 'off'}.")
    return redirect("accounts:settings")


# --- Creating, switching and joining organizations ----------------------------------------------


@login_required
@require_POST
def organization_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("name", ["Invalid name."])))
        return redirect("organizations:home")
    org = services.organization_create(name=form.cleaned_data["name"], owner=_user(request))
    request.session[SESSION_KEY] = org.slug
    messages.success(request, f"Created {org.name}. You are its owner.")
    return redirect(_organization_url(org))


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponseBase:
    org, _membership = organization_for_request(request, request.POST.get("organization", ""))
    url = _keys_url(org)
    return HttpResponseClientRedirect(url) if _is_htmx(request) else redirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_get_by_token(token=token)
    user = _user(request)
    error = None
    if invitation is None or not invitation.is_open:
        error = "This invitation is no longer valid. Ask for a new one."
    elif invitation.email.lower() != user.email.lower():
        error = f"This invitation was sent to {invitation.email}, but you are signed in as {user.email}."
    if request.method == "POST" and error is None:
        try:
            membership = services.invitation_accept(token=token, user=user)
        except OrganizationError as exc:
            error = str(exc)
        else:
            request.session[SESSION_KEY] = membership.organization.slug
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect(_keys_url(membership.organization))
    context = {"invitation": invitation if error is None else None, "error": error}
    return render(request, "organizations/invitation_accept.html", context, status=200 if error is None else 400)
