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
        help_text="Off by default. The settings page explains exactly what is kept, where, and for how long.",
    )
    retention_days = forms.IntegerField(
        label="Keep them for (days)",
        required=False,
        min_value=1,
        max_value=365,
        help_text="Older prompt logs are deleted by an hourly job. Default 30 days.",
    )

    @classmethod
    def for_organization(cls, organization: Organization) -> PrivacyForm:
        return cls(
            initial={
                "log_prompts": organization.log_prompts,
                "retention_days": organization.log_prompts_retention_days,
            }
        )


def _entries(text: str) -> list[str]:
    """A textarea of entries separated by commas or new lines."""
    return [e.strip() for e in text.replace(",", "\n").splitlines() if e.strip()]


class _ListField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, widget=forms.Textarea(attrs={"rows": 2}), **kwargs)

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return _entries(str(value or ""))


class DataPolicyForm(forms.Form):
    """The organization's data policy; organizations/policy.py validates the entries."""

    deny_data_collection = forms.BooleanField(
        label="Exclude providers that may train on or retain prompts",
        required=False,
        help_text="Like data_collection: deny on every request, whatever the request says.",
    )
    zdr_only = forms.BooleanField(
        label="Zero Data Retention endpoints only", required=False, help_text="Like zdr: true on every request."
    )
    allowed_providers = _ListField(
        label="Allowed providers", help_text="Provider slugs, e.g. anthropic, openai. Empty: any provider."
    )
    blocked_providers = _ListField(label="Blocked providers", help_text="Provider slugs never used.")
    allowed_models = _ListField(
        label="Allowed models",
        help_text="Model ids or author/* patterns, e.g. anthropic/*, openai/gpt-4o. Empty: any model.",
    )

    @classmethod
    def for_organization(cls, organization: Organization) -> DataPolicyForm:
        return cls(
            initial={
                "deny_data_collection": organization.policy_deny_data_collection,
                "zdr_only": organization.policy_zdr_only,
                "allowed_providers": "\n".join(organization.policy_allowed_providers or []),
                "blocked_providers": "\n".join(organization.policy_blocked_providers or []),
                "allowed_models": "\n".join(organization.policy_allowed_models or []),
            }
        )


class KeyModelsForm(forms.Form):
    allowed_models = _ListField(
        label="Allowed models",
        help_text="Model ids or author/* patterns this key may use, on top of the organization's. Empty: any.",
    )
