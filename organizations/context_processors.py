from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def organizations(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    from organizations.selectors import organization_list_for_user

    return {
        "current_organization": getattr(request, "current_organization", None),
        "current_membership": getattr(request, "current_membership", None),
        "user_organizations": organization_list_for_user(user=user),
    }
