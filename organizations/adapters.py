"""allauth's account adapter: sign-up also creates the new user's personal organization.

It lives here, not in accounts, because accounts sits below organizations and may not import it.
settings.ACCOUNT_ADAPTER points here.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.http import HttpRequest

from organizations.services import organization_create_personal


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """Every new user gets a personal organization at sign-up."""

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            organization_create_personal(user=user)
        return user
