"""Browser pages for an organization: members, invitations, privacy, creating and switching.

Every org URL goes through `org_page`, so an outsider gets a 404 before any form is read. Members see
the members; only owners and admins change them (403). The Keys page, the home page and Settings
combine several apps and live in `openrouter_site.pages`; this module only links to them by name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import User
from organizations import selectors, services
from organizations.access import SESSION_KEY, OrgRequest, org_page
from organizations.adapters import INVITATION_SESSION_KEY
from organizations.forms import InviteForm, OrganizationCreateForm, PrivacyForm, RoleForm
from organizations.models import Membership, Organization
from organizations.services import OrganizationError


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # login_required guarantees a real user
    return user


def _is_htmx(request: HttpRequest) -> bool:
    return bool(getattr(request, "htmx", False))


def _keys_url(organization: Organization) -> str:
    return reverse("pages:keys", kwargs={"slug": organization.slug})


# --- Organization: members and invitations -------------------------------------------------------


def _organization_page(request: OrgRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    organization, membership = request.organization, request.membership
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


@org_page()
@require_GET
def organization(request: OrgRequest) -> HttpResponse:
    return _organization_page(request)


@org_page(manage=True)
@require_POST
def invite(request: OrgRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            services.invitation_create_and_send(
                actor=request.membership,
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
            return redirect(_organization_url(request.organization))
    return _organization_page(request, invite_form=form, status=400)


@org_page(manage=True)
@require_POST
def member_role(request: OrgRequest, membership_id: int) -> HttpResponse:
    org = request.organization
    target = selectors.membership_get_in_organization(organization=org, membership_id=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, admin or member.")
        return redirect(_organization_url(org))
    try:
        services.membership_set_role(actor=request.membership, membership=target, role=form.cleaned_data["role"])
    except OrganizationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{target.user.email} is now {target.get_role_display().lower()}.")
    return redirect(_organization_url(org))


@org_page()  # any member may leave; removing someone else needs owner or admin (checked below)
@require_POST
def member_remove(request: OrgRequest, membership_id: int) -> HttpResponse:
    org, membership = request.organization, request.membership
    target = selectors.membership_get_in_organization(organization=org, membership_id=membership_id)
    leaving = target.pk == membership.pk
    if not leaving and not membership.can_manage:
        raise PermissionDenied("Only owners and admins can do this.")
    try:
        services.membership_remove(actor=membership, membership=target)
    except OrganizationError as exc:
        messages.error(request, str(exc))
        return redirect(_organization_url(org))
    if leaving:
        request.session.pop(SESSION_KEY, None)
        messages.success(request, f"You left {org.name}.")
        return redirect("pages:home")
    messages.success(request, f"Removed {target.user.email}.")
    return redirect(_organization_url(org))


@org_page(manage=True)
@require_POST
def invitation_revoke(request: OrgRequest, invitation_id: UUID) -> HttpResponse:
    invitation = selectors.invitation_get(organization=request.organization, public_id=str(invitation_id))
    services.invitation_revoke(actor=request.membership, invitation=invitation)
    messages.success(request, f"Revoked the invitation for {invitation.email}.")
    return redirect(_organization_url(request.organization))


@org_page(manage=True)
@require_POST
def privacy(request: OrgRequest) -> HttpResponse:
    form = PrivacyForm(request.POST)
    if not form.is_valid():  # the checkbox is always valid (absent means off); the days may not be
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("pages:settings")
    enabled = bool(form.cleaned_data.get("log_prompts"))
    try:
        services.organization_set_log_prompts(
            actor=request.membership, enabled=enabled, retention_days=form.cleaned_data.get("retention_days")
        )
    except OrganizationError as exc:
        messages.error(request, str(exc))
        return redirect("pages:settings")
    messages.success(request, f"Prompt and completion logging is {'on' if enabled else 'off'}.")
    return redirect("pages:settings")


# --- Creating, switching and joining organizations ----------------------------------------------


@login_required
@require_POST
def organization_create(request: HttpRequest) -> HttpResponse:
    form = OrganizationCreateForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("name", ["Invalid name."])))
        return redirect("pages:home")
    org = services.organization_create(name=form.cleaned_data["name"], owner=_user(request))
    request.session[SESSION_KEY] = org.slug
    messages.success(request, f"Created {org.name}. You are its owner.")
    return redirect(_organization_url(org))


@org_page()
def _switch_to(request: OrgRequest) -> HttpResponseBase:
    # org_page has already made the organization the session's current one.
    url = _keys_url(request.organization)
    return HttpResponseClientRedirect(url) if _is_htmx(request) else redirect(url)


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponseBase:
    """The header's switcher posts the slug in the form, not the URL; org_page resolves it all the same."""
    return _switch_to(request, request.POST.get("organization", ""))


def _invitation_sign_in(request: HttpRequest, token: str) -> HttpResponse:
    """A signed-out invitee: remember the invitation (see adapters.INVITATION_SESSION_KEY) and send them to
    sign up, or to sign in if the invited address already has an account, with the link as ?next=."""
    invitation = selectors.invitation_get_by_token(token=token)
    page = "account_login"
    if invitation is not None and invitation.is_open:
        request.session[INVITATION_SESSION_KEY] = {
            "token": token,
            "organization": invitation.organization.name,
            "email": invitation.email,
        }
        if not User.objects.filter(email__iexact=invitation.email).exists():
            page = "account_signup"
    return redirect(f"{reverse(page)}?{urlencode({'next': request.path}, safe='/')}")


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return _invitation_sign_in(request, token)
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
            request.session.pop(INVITATION_SESSION_KEY, None)
            messages.success(request, f"Welcome to {membership.organization.name}.")
            return redirect(_keys_url(membership.organization))
    if error is not None:
        request.session.pop(INVITATION_SESSION_KEY, None)  # a dead invitation must not keep redirecting sign-ins
    context = {"invitation": invitation if error is None else None, "error": error}
    return render(request, "organizations/invitation_accept.html", context, status=200 if error is None else 400)
