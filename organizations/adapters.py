"""allauth's account adapter: sign-up also creates the new user's personal organization, and a
pending invitation (opened while signed out) is where sign-in, sign-up and email confirmation land.

It lives here, not in accounts, because accounts sits below organizations and may not import it.
settings.ACCOUNT_ADAPTER points here.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

from organizations.services import organization_create_personal

# {"token", "organization", "email"} of an invitation link opened while signed out. Kept in the session,
# not only in ?next=, because email verification sends the new user through a mailed link, which drops
# the query string but not the session (same browser).
INVITATION_SESSION_KEY = "pending_invitation"


def pending_invitation_url(request: HttpRequest) -> str | None:
    pending = request.session.get(INVITATION_SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(pending, dict) or not isinstance(pending.get("token"), str):
        return None
    return reverse("organizations:invitation_accept", kwargs={"token": pending["token"]})


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    """Every new user gets a personal organization at sign-up."""

    def save_user(self, request: HttpRequest, user: Any, form: Any, commit: bool = True) -> Any:
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            organization_create_personal(user=user)
        return user

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return pending_invitation_url(request) or str(super().get_login_redirect_url(request))

    def get_signup_redirect_url(self, request: HttpRequest) -> str:
        return pending_invitation_url(request) or str(super().get_signup_redirect_url(request))


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    """SAML has no standard `email_verified`: an address asserted by the company's own identity
    provider (its directory issued it) counts as verified when SAML_TRUST_EMAIL is on, so the user is
    not asked to confirm it and SSO_AUTO_JOIN can apply. OIDC keeps the provider's own claim."""

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        if sociallogin.account.provider == "saml" and settings.SAML_TRUST_EMAIL:
            for address in sociallogin.email_addresses:
                address.verified = True
