"""How a browser page finds its organization: one decorator, one typed request.

Every page under `/o/<slug>/` is written as

    @org_page()                      # any member; `@org_page(manage=True)` for owners and admins
    def keys(request: OrgRequest) -> HttpResponse:
        request.organization, request.membership, request.user  # resolved once, typed

The decorator signs the visitor in (login redirect), resolves the organization from the slug through
the membership (an outsider gets 404, never a hint that the organization exists), enforces the role
(403 with the reason) and makes the organization the visitor's current one for the switcher.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from accounts.models import User
from organizations.models import Membership, Organization
from organizations.selectors import organization_get_for_user

SESSION_KEY = "current_org"

P = ParamSpec("P")
R = TypeVar("R", bound=HttpResponseBase)


class CurrentOrgRequest(HttpRequest):
    """Any browser request after CurrentOrganizationMiddleware: the switcher's organization, if any."""

    current_organization: Organization | None
    current_membership: Membership | None


class OrgRequest(CurrentOrgRequest):
    """A request for an organization's page, after `org_page` resolved it (a type, never built)."""

    user: User
    organization: Organization
    membership: Membership


def org_page(
    *, manage: bool = False, denied: str = "Only owners and admins can do this."
) -> Callable[[Callable[Concatenate[OrgRequest, P], R]], Callable[Concatenate[HttpRequest, str, P], R]]:
    """Resolve `slug` to the caller's organization and membership before the view runs."""

    def decorate(view: Callable[Concatenate[OrgRequest, P], R]) -> Callable[Concatenate[HttpRequest, str, P], R]:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, slug: str, *args: P.args, **kwargs: P.kwargs) -> R:
            user = request.user
            assert isinstance(user, User)  # login_required below guarantees a real user
            organization, membership = organization_get_for_user(user=user, slug=slug)
            if manage and not membership.can_manage:
                raise PermissionDenied(denied)
            resolved = cast(OrgRequest, request)
            resolved.organization = organization
            resolved.membership = membership
            # The page's organization is the visitor's current one from now on (nav, switcher).
            current = cast(CurrentOrgRequest, request)
            current.current_organization, current.current_membership = organization, membership
            if request.session.get(SESSION_KEY) != organization.slug:
                request.session[SESSION_KEY] = organization.slug
            return view(resolved, *args, **kwargs)

        return cast(Callable[Concatenate[HttpRequest, str, P], R], login_required(wrapper))

    return decorate
