"""Admin for payments: operators see top-ups, Stripe events, deposits and their ledger entries.

Everything is read-only; the one write is the refund action, which goes through the service
(a Stripe refund call and a ledger entry). Nothing here edits a balance.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html_join

from accounts.models import User
from billing.models import AutoTopUpRule, ChainCursor, CryptoDeposit, DepositAddress, LedgerEntry, StripeEvent, TopUp
from billing.payments.quotes import PaymentError
from billing.payments.topups import topup_refund
from common.money import nanos_to_usd, usd_to_nanos


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
        "created_at",
    ]
    list_filter = ["status", "source", "dispute_status"]
    search_fields = ["public_id", "stripe_session_id", "stripe_payment_intent_id", "organization__slug"]
    readonly_fields = ["ledger_entries"]
    actions = ["refund_in_full", "refund_ten_dollars"]

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

    @admin.action(description="Refund $10 of the charge (card refund + ledger entry)")
    def refund_ten_dollars(self, request: HttpRequest, queryset: QuerySet[TopUp]) -> None:
        self._refund(request, queryset, usd_to_nanos(10))


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "outcome", "note", "received_at"]
    list_filter = ["outcome", "type"]
    search_fields = ["event_id", "payment_intent_id"]


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
    list_display = ["organization", "chain_id", "tx_hash", "log_index", "amount_nanos", "status", "confirmations"]
    list_filter = ["status", "chain_id"]
    search_fields = ["tx_hash", "from_address", "organization__slug"]
    readonly_fields = ["ledger_entries"]

    @admin.display(description="Ledger entries")
    def ledger_entries(self, obj: CryptoDeposit) -> str:
        return _entries([f"crypto:{obj.chain_id}:{obj.tx_hash}:{obj.log_index}"])


@admin.register(ChainCursor)
class ChainCursorAdmin(ReadOnlyAdmin):
    list_display = ["chain_id", "next_block", "head_block", "updated_at"]
