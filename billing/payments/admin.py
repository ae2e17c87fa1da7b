"""Admin for payments: operators see top-ups, Stripe events, deposits and their ledger entries.

Rows are read-only; every write is an action that goes through a service: refund any amount (a
Stripe refund and its ledger entry), credit a deposit or a rejected Stripe event as the payment it
is (never as a grant), dismiss, retry. Nothing here edits a balance directly.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from accounts.models import User
from billing.models import AutoTopUpRule, ChainCursor, CryptoDeposit, DepositAddress, LedgerEntry, StripeEvent, TopUp
from billing.payments.auto_topup import auto_topup_run
from billing.payments.crypto import crypto_deposit_credit_by_operator, crypto_deposit_dismiss, crypto_deposit_recheck
from billing.payments.quotes import PaymentError
from billing.payments.topups import topup_refund
from billing.payments.webhooks import payment_event_credit, payment_event_dismiss, payment_event_retry
from common.money import nanos_to_usd, usd_to_nanos


def _actor(request: HttpRequest) -> str:
    return str(getattr(request.user, "email", "") or request.user)


class AmountActionForm(ActionForm):
    amount_usd = forms.CharField(required=False, label="Amount (USD)", max_length=20)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _entries(keys: list[str]) -> str:
    rows = LedgerEntry.objects.filter(idempotency_key__in=keys)
    return format_html_join(
        "\n",
        "<div>{} · {} · {}</div>",
        ((e.created_at.strftime("%Y-%m-%d %H:%M"), e.kind, e.idempotency_key) for e in rows),
    )


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = [
        "public_id",
        "organization",
        "source",
        "status",
        "credit_usd",
        "fee_usd",
        "refunded_usd",
        "attempts",
        "failure_reason",
        "created_at",
    ]
    list_filter = ["status", "source", "dispute_status"]
    search_fields = ["public_id", "stripe_session_id", "stripe_payment_intent_id", "organization__slug"]
    readonly_fields = ["ledger_entries"]
    action_form = AmountActionForm
    actions = ["refund_in_full", "refund_amount", "retry_auto_topup"]

    @admin.display(description="Credit")
    def credit_usd(self, obj: TopUp) -> Decimal:
        return nanos_to_usd(obj.credit_nanos)

    @admin.display(description="Fee")
    def fee_usd(self, obj: TopUp) -> Decimal:
        return nanos_to_usd(obj.fee_nanos)

    @admin.display(description="Refunded")
    def refunded_usd(self, obj: TopUp) -> Decimal:
        return nanos_to_usd(obj.refunded_nanos)

    @admin.display(description="Ledger entries")
    def ledger_entries(self, obj: TopUp) -> str:
        entries = LedgerEntry.objects.filter(idempotency_key__startswith=f"topup:{obj.public_id}") | (
            LedgerEntry.objects.filter(idempotency_key__startswith=f"refund:{obj.public_id}:")
        )
        if obj.dispute_id:
            entries = entries | LedgerEntry.objects.filter(idempotency_key__startswith=f"dispute:{obj.dispute_id}:")
        return format_html_join(
            "\n", "<div>{} · {} · {}</div>", ((e.created_at, e.kind, e.idempotency_key) for e in entries)
        )

    def _refund(self, request: HttpRequest, queryset: QuerySet[TopUp], amount_nanos: int | None) -> None:
        actor = request.user if isinstance(request.user, User) else None
        for topup in queryset:
            amount = amount_nanos if amount_nanos is not None else topup.total_nanos - topup.refunded_nanos
            try:
                topup_refund(topup=topup, amount_nanos=amount, actor=actor)
                messages.success(request, f"Refunded ${nanos_to_usd(amount)} of {topup.public_id}.")
            except PaymentError as exc:
                messages.error(request, f"{topup.public_id}: {exc}")

    @admin.action(description="Refund what is left of the charge (card refund + ledger entry)")
    def refund_in_full(self, request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
        self._refund(request, queryset, None)

    @admin.action(description="Refund the amount given (USD, whole cents) of each charge")
    def refund_amount(self, request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
        raw = str(request.POST.get("amount_usd", "")).strip().lstrip("$")
        try:
            amount = usd_to_nanos(raw)
        except (ValueError, InvalidOperation):
            messages.error(request, "Enter the amount to refund in dollars, e.g. 12.34.")
            return
        self._refund(request, queryset, amount)

    @admin.action(description="Retry a pending auto top-up now (looks the charge up in Stripe first)")
    def retry_auto_topup(self, request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
        for topup in queryset.filter(source=TopUp.Source.AUTO, status=TopUp.Status.PENDING):
            result = auto_topup_run(organization_id=topup.organization_id)
            messages.info(request, f"{topup.public_id}: {result.status if result else 'nothing to do'}")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "outcome", "note", "received_at"]
    list_filter = ["outcome", "type"]
    search_fields = ["event_id", "payment_intent_id"]
    actions = ["retry", "dismiss", "credit_as_payment"]

    @admin.action(description="Retry: apply the event again")
    def retry(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        for row in queryset:
            done = payment_event_retry(event_row_id=row.pk, actor=_actor(request))
            messages.info(request, f"{row.event_id}: {done.outcome} {done.note}")

    @admin.action(description="Dismiss (nothing to do for us)")
    def dismiss(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        count = sum(payment_event_dismiss(event_row_id=row.pk, actor=_actor(request)) for row in queryset)
        messages.success(request, f"Dismissed {count} event(s).")

    @admin.action(description="Credit a rejected payment event's top-up as a payment")
    def credit_as_payment(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        for row in queryset:
            try:
                payment_event_credit(event_row_id=row.pk, actor=_actor(request))
                messages.success(request, f"{row.event_id}: credited as a payment.")
            except ValueError as exc:
                messages.error(request, f"{row.event_id}: {exc}")


@admin.register(AutoTopUpRule)
class AutoTopUpRuleAdmin(ReadOnlyAdmin):
    list_display = ["organization", "enabled", "threshold_nanos", "amount_nanos", "last_error", "updated_at"]
    list_filter = ["enabled"]


@admin.register(DepositAddress)
class DepositAddressAdmin(ReadOnlyAdmin):
    list_display = ["organization", "chain_id", "address", "derivation_index"]
    search_fields = ["address", "organization__slug"]


@admin.register(CryptoDeposit)
class CryptoDepositAdmin(ReadOnlyAdmin):
    list_display = [
        "organization",
        "chain_id",
        "tx_hash",
        "log_index",
        "amount_usd",
        "status",
        "confirmations",
        "note",
        "created_at",
    ]
    list_filter = ["status", "chain_id"]
    search_fields = ["tx_hash", "from_address", "organization__slug"]
    readonly_fields = ["ledger_entries"]
    actions = ["credit_as_payment", "dismiss", "recheck"]

    @admin.display(description="Amount")
    def amount_usd(self, obj: CryptoDeposit) -> Decimal:
        return nanos_to_usd(obj.amount_nanos)

    @admin.action(description="Credit as a payment (checked on an explorer): ledger entry with the 5%% fee")
    def credit_as_payment(self, request: HttpRequest, queryset: QuerySet[CryptoDeposit]) -> None:
        count = sum(crypto_deposit_credit_by_operator(deposit_id=d.pk, actor=_actor(request)) for d in queryset)
        messages.success(request, f"Credited {count} deposit(s) as payments.")

    @admin.action(description="Dismiss an orphaned or below-minimum deposit")
    def dismiss(self, request: HttpRequest, queryset: QuerySet[CryptoDeposit]) -> None:
        count = sum(crypto_deposit_dismiss(deposit_id=d.pk, actor=_actor(request)) for d in queryset)
        messages.success(request, f"Dismissed {count} deposit(s).")

    @admin.action(description="Re-check on the chain at the next scan (back to pending)")
    def recheck(self, request: HttpRequest, queryset: QuerySet[CryptoDeposit]) -> None:
        count = sum(crypto_deposit_recheck(deposit_id=d.pk, actor=_actor(request)) for d in queryset)
        messages.success(request, f"{count} deposit(s) will be re-checked by the next scan.")

    @admin.display(description="Ledger entries")
    def ledger_entries(self, obj: CryptoDeposit) -> str:
        return _entries([f"crypto:{obj.chain_id}:{obj.tx_hash}:{obj.log_index}"])


@admin.register(ChainCursor)
class ChainCursorAdmin(ReadOnlyAdmin):
    # updated_at is the heartbeat (every scan attempt moves it); last_error is set while the RPC fails.
    list_display = ["chain_id", "available", "next_block", "head_block", "updated_at", "last_ok_at", "last_error"]

    @admin.display(description="Reachable", boolean=True)
    def available(self, obj: ChainCursor) -> bool:
        return not obj.last_error
