from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

SESSION_KEY = "current_org"


class CurrentOrganizationMiddleware:
    """Puts the signed-in user's current organization (from the switcher) on `request.organization`.

    Only for browser pages; the API resolves the organization from the key and never runs this.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organization = None  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            from organizations.models import Membership

            memberships = Membership.objects.select_related("organization").filter(user=user)
            slug = request.session.get(SESSION_KEY)
            chosen = next((m for m in memberships if m.organization.slug == slug), None)
            if chosen is None:
                chosen = min(memberships, key=lambda m: (not m.organization.is_personal, m.pk), default=None)
            if chosen is not None:
                request.organization = chosen.organization  # type: ignore[attr-defined]
                request.membership = chosen  # type: ignore[attr-defined]
        return self.get_response(request)
