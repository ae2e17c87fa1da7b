from billing.payments import admin as payments_admin  # noqa: F401, I001  (payments registers its models there)

# The ledger in the admin console. The ledger is append-only: accounts, entries, postings and
# generations are read-only here (no add, change or delete). Operators move money only through
# `organization_credits_view` (linked from each organization: billing extends organizations' admin
# below), which calls the same services as everything else (credits_grant / credits_revoke): a new
# ledger entry, never an edited balance.
# (No `from __future__` import: this module's first line must stay the payments import.)

import uuid
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount, LedgerEntry, Posting, ReconciliationRun, UsageDeadLetter
from common.money import nanos_to_usd, usd_to_nanos
from billing.services import CreditsError, credits_grant, credits_revoke
from organizations.admin import OrganizationAdmin
from organizations.models import Organization


def _usd(nanos: int | None) -> str:
    return "" if nanos is None else f"${nanos_to_usd(nanos).normalize():,f}"


class AppendOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(AppendOnlyAdmin):
    list_display = ["__str__", "kind", "organization", "balance", "updated_at"]
    list_filter = ["kind"]
    search_fields = ["organization__name", "organization__slug"]
    list_select_related = ["organization"]

    @admin.display(description="Balance", ordering="balance_nanos")
    def balance(self, obj: LedgerAccount) -> str:
        return _usd(obj.balance_nanos)


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ["account", "amount"]
    readonly_fields = ["account", "amount"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Amount")
    def amount(self, obj: Posting) -> str:
        return _usd(obj.amount_nanos)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(AppendOnlyAdmin):
    list_display = ["created_at", "kind", "organization", "memo", "idempotency_key", "created_by"]
    list_filter = ["kind", "created_at"]
    search_fields = ["idempotency_key", "memo", "organization__name", "organization__slug", "created_by__email"]
    list_select_related = ["organization", "created_by"]
    date_hierarchy = "created_at"
    inlines = [PostingInline]


@admin.register(Posting)
class PostingAdmin(AppendOnlyAdmin):
    list_display = ["entry", "account", "amount"]
    list_filter = ["account__kind", "entry__kind"]
    search_fields = ["entry__idempotency_key", "account__organization__name", "account__organization__slug"]
    list_select_related = ["entry", "account", "account__organization"]

    @admin.display(description="Amount", ordering="amount_nanos")
    def amount(self, obj: Posting) -> str:
        return _usd(obj.amount_nanos)


@admin.register(Generation)
class GenerationAdmin(AppendOnlyAdmin):
    list_display = [
        "generation_id",
        "created_at",
        "organization",
        "key_name",
        "model",
        "provider_name",
        "tokens_prompt",
        "tokens_completion",
        "cost",
        "is_byok",
        "streamed",
        "cancelled",
        "finish_reason",
    ]
    list_filter = ["is_byok", "streamed", "cancelled", "usage_estimated", "api_type", "finish_reason", "provider_slug"]
    search_fields = ["generation_id", "upstream_id", "model", "organization__name", "organization__slug"]
    list_select_related = ["organization", "api_key"]
    date_hierarchy = "created_at"

    @admin.display(description="Key")
    def key_name(self, obj: Generation) -> str:
        return obj.api_key.name if obj.api_key else "(deleted)"

    @admin.display(description="Cost", ordering="cost_nanos")
    def cost(self, obj: Generation) -> str:
        return _usd(obj.cost_nanos)


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(AppendOnlyAdmin):
    """Usage events settlement could not post; `manage.py usage_deadletter_retry` posts them after a fix."""

    list_display = [
        "generation_id",
        "organization_id",
        "charge",
        "attempts",
        "created_at",
        "resolved_at",
        "short_error",
    ]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["generation_id", "error"]
    exclude = ["payload"]
    readonly_fields = ["event"]
    date_hierarchy = "created_at"

    @admin.display(description="Charge", ordering="charge_nanos")
    def charge(self, obj: UsageDeadLetter) -> str:
        return _usd(obj.charge_nanos)

    @admin.display(description="Error")
    def short_error(self, obj: UsageDeadLetter) -> str:
        return obj.error[:120]

    @admin.display(description="Event")
    def event(self, obj: UsageDeadLetter) -> str:
        # Shown escaped (repr): the payload may hold exactly the bytes that made it fail.
        return repr(bytes(obj.payload))[:5000]


# --- Grant / revoke credits ------------------------------------------------------------------


class CreditsForm(forms.Form):
    action = forms.ChoiceField(choices=[("grant", "Grant credits"), ("revoke", "Revoke credits")])
    amount_usd = forms.DecimalField(
        label="Amount (USD)", min_value=Decimal("0.000000001"), max_digits=19, decimal_places=9
    )
    reason = forms.CharField(max_length=500, help_text="Shown to the organization on its Credits page.")
    # One token per rendered form: a double submit posts the same ledger entry once.
    token = forms.UUIDField(widget=forms.HiddenInput)


def can_move_credits(user: Any) -> bool:
    return bool(user.is_active and (user.is_superuser or user.has_perm("billing.add_ledgerentry")))


def organization_credits_view(request: HttpRequest, object_id: str) -> HttpResponse:
    """Admin page: grant or revoke an organization's credits through the ledger services."""
    if not can_move_credits(request.user):
        raise PermissionDenied
    organization = get_object_or_404(Organization, pk=object_id)
    if request.method == "POST":
        form = CreditsForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            service = credits_grant if data["action"] == "grant" else credits_revoke
            user = request.user if isinstance(request.user, User) else None
            try:
                service(
                    organization=organization,
                    amount_nanos=usd_to_nanos(data["amount_usd"]),
                    reason=data["reason"],
                    created_by=user,
                    idempotency_key=f"admin-{data['action']}:{data['token']}",
                )
            except CreditsError as exc:
                form.add_error(None, str(exc))
            else:
                verb = "Granted" if data["action"] == "grant" else "Revoked"
                messages.success(request, f"{verb} ${data['amount_usd']:,f} for {organization}.")
                return redirect(reverse("admin:organizations_organization_change", args=[organization.pk]))
    else:
        form = CreditsForm(initial={"token": uuid.uuid4(), "action": request.GET.get("action", "grant")})
    context = {
        **admin.site.each_context(request),
        "title": f"Credits for {organization}",
        "organization": organization,
        "balance": _usd(org_balance_nanos(organization)),
        "form": form,
        "opts": Organization._meta,
    }
    return TemplateResponse(request, "billing/admin_credits.html", context)


# --- The Organization admin, extended with its balance --------------------------------------------


class OrganizationCreditsAdmin(OrganizationAdmin):
    """organizations' admin plus the balance column and the grant/revoke links: billing adds them here
    because organizations sits below billing and may not read the ledger."""

    list_display = [name for name in OrganizationAdmin.list_display if name != "created_at"] + ["balance", "created_at"]
    readonly_fields = [*OrganizationAdmin.readonly_fields, "credits"]

    @admin.display(description="Balance")
    def balance(self, obj: Organization) -> str:
        return _usd(org_balance_nanos(obj))

    @admin.display(description="Credits")
    def credits(self, obj: Organization) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:organizations_organization_credits", args=[obj.pk])
        return format_html(
            '{} &nbsp; <a href="{}?action=grant">Grant credits</a> · <a href="{}?action=revoke">Revoke credits</a>',
            self.balance(obj),
            url,
            url,
        )

    def get_urls(self) -> list[URLPattern]:
        credits = path(
            "<path:object_id>/credits/",
            self.admin_site.admin_view(organization_credits_view),
            name="organizations_organization_credits",
        )
        return [credits, *super().get_urls()]


admin.site.unregister(Organization)
admin.site.register(Organization, OrganizationCreditsAdmin)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(AppendOnlyAdmin):
    """Read-only: when the gate and the ledger last agreed, and every disagreement found since."""

    list_display = ("created_at", "is_agreed", "gap_count", "dead_lettered")
    list_filter = ("created_at",)
    readonly_fields = ("created_at", "dead_lettered", "gap_details")
    exclude = ("gaps",)

    @admin.display(boolean=True, description="books agree")
    def is_agreed(self, run: ReconciliationRun) -> bool:
        return run.agreed

    @admin.display(description="organizations with gaps")
    def gap_count(self, run: ReconciliationRun) -> int:
        return len(run.gaps)

    @admin.display(description="gaps")
    def gap_details(self, run: ReconciliationRun) -> str:
        return "\n".join(gap["detail"] for gap in run.gaps) or "none"
