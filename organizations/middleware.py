from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.http import HttpRequest, HttpResponse

from organizations.access import SESSION_KEY, CurrentOrgRequest


class CurrentOrganizationMiddleware:
    """Puts the signed-in user's current organization (from the switcher) on
    `request.current_organization` / `request.current_membership`.

    Only for browser pages; the API resolves the organization from the key and never runs this.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        current = cast(CurrentOrgRequest, request)
        current.current_organization = None
        current.current_membership = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from organizations.models import Membership

            memberships = Membership.objects.select_related("organization").filter(user=user)
            slug = request.session.get(SESSION_KEY)
            chosen = next((m for m in memberships if m.organization.slug == slug), None)
            if chosen is None:
                chosen = min(memberships, key=lambda m: (not m.organization.is_personal, m.pk), default=None)
            if chosen is not None:
                current.current_organization = chosen.organization
                current.current_membership = chosen
        return self.get_response(request)
