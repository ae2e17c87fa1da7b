"""Browser forms for keys, members and invitations. They only parse; services decide and write."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from common.money import nanos_to_usd, usd_to_nanos
from organizations.models import ApiKey, Membership, Organization

NEVER = "never"
RESET_CHOICES = [(NEVER, "Never"), *ApiKey.LimitReset.choices]


class _LimitFields(forms.Form):
    """A USD credit limit parsed exactly to nano-dollars, with its reset period."""

    limit_usd = forms.DecimalField(
        label="Credit limit (USD)",
        required=False,
        min_value=Decimal(0),
        max_digits=18,
        decimal_places=9,
        help_text="Leave empty for no limit.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "e.g. 25.00"}),
    )
    limit_reset = forms.ChoiceField(label="Resets", choices=RESET_CHOICES, initial=NEVER, required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        usd = cleaned.get("limit_usd")
        reset = cleaned.get("limit_reset") or NEVER
        if usd is None:
            if reset != NEVER and "limit_usd" not in self.errors:
                self.add_error("limit_usd", "A reset period needs a limit.")
            cleaned["limit_nanos"] = None
            cleaned["limit_reset_value"] = None
            return cleaned
        try:
            cleaned["limit_nanos"] = usd_to_nanos(usd)
        except ValueError:
            self.add_error("limit_usd", "Use at most 9 decimal places.")
        cleaned["limit_reset_value"] = None if reset == NEVER else reset
        return cleaned


class KeyCreateForm(_LimitFields):
    name = forms.CharField(
        max_length=120, widget=forms.TextInput(attrs={"placeholder": "e.g. production backend", "autofocus": True})
    )
    is_management = forms.BooleanField(
        label="Management key",
        required=False,
        help_text="Manages keys through the API; cannot call models.",
    )

    field_order = ["name", "limit_usd", "limit_reset", "is_management"]

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A key needs a name.")
        return name


class KeyRenameForm(forms.Form):
    name = forms.CharField(max_length=120)

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("A key needs a name.")
        return name


class KeyLimitForm(_LimitFields):
    include_byok_in_limit = forms.BooleanField(
        label="Count BYOK usage",
        required=False,
        help_text="Also count requests paid with your own provider keys toward this limit.",
    )

    @classmethod
    def for_key(cls, api_key: ApiKey) -> KeyLimitForm:
        initial: dict[str, Any] = {
            "limit_reset": api_key.limit_reset or NEVER,
            "include_byok_in_limit": api_key.include_byok_in_limit,
        }
        if api_key.limit_nanos is not None:
            initial["limit_usd"] = format(nanos_to_usd(api_key.limit_nanos).normalize(), "f")
        return cls(initial=initial)


class InviteForm(forms.Form):
    email = forms.EmailField(widget=forms.EmailInput(attrs={"placeholder": "teammate@example.com"}))
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class OrganizationCreateForm(forms.Form):
    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"placeholder": "e.g. Acme Inc."}))

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("An organization needs a name.")
        return name


class PrivacyForm(forms.Form):
    log_prompts = forms.BooleanField(
        label="Store prompts and completions",
        required=False,
        help_text="Off by default. When on, request and response bodies are kept so admins can inspect them.",
    )

    @classmethod
    def for_organization(cls, organization: Organization) -> PrivacyForm:
        return cls(initial={"log_prompts": organization.log_prompts})
