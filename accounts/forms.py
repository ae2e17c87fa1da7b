from __future__ import annotations

from organizations.forms import PrivacyForm
from organizations.models import Membership


def privacy_form_for(membership: Membership) -> PrivacyForm:
    """The current organization's privacy switch, pre-filled (shown to owners and admins only)."""
    return PrivacyForm(initial={"log_prompts": membership.organization.log_prompts})
