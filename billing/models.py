"""The money model: an append-only, double-entry ledger in integer nano-dollars (1e-9 USD)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from organizations.models import ApiKey, Organization

NANOS_PER_USD = 1_000_000_000


class LedgerAccount(models.Model):
    """One side of a posting. `balance_nanos` is a cache of the sum of its postings.

    It is written only by `billing.services.ledger_post`, inside the same transaction as the postings
    and under a row lock; `ledger_verify` recomputes it from postings.
    """

    class Kind(models.TextChoices):
        ORG_CREDITS = "org_credits", "Organization credits"
        USAGE_REVENUE = "usage_revenue", "Usage revenue"
        FEE_REVENUE = "fee_revenue", "Fee revenue"
        PAYMENT_CLEARING = "payment_clearing", "Payment clearing"
        GRANTS = "grants", "Grants"
        DISPUTES_HELD = "disputes_held", "Disputed credit on hold"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    balance_nanos = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "organization"], name="unique_account_per_org"),
            models.UniqueConstraint(
                fields=["kind"], condition=models.Q(organization__isnull=True), name="unique_platform_account"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.organization_id or 'platform'}"


class LedgerEntry(models.Model):
    """One business event. Its postings sum to zero; its idempotency key makes replays no-ops."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        REVOKE = "revoke", "Revoke"
        USAGE = "usage", "Usage"
        TOPUP = "topup", "Top-up"
        REFUND = "refund", "Refund"
        DISPUTE = "dispute", "Dispute"
        ADJUSTMENT = "adjustment", "Adjustment"

    idempotency_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    memo = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}"


class Posting(models.Model):
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="postings")
    amount_nanos = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.account} {self.amount_nanos:+d}"


class Generation(models.Model):
    """The priced record of one completion. Never holds prompt or completion text.

    Written by the settlement worker in the same transaction as its ledger entry, keyed by the
    generation id, so a usage event replayed after a crash changes nothing.
    """

    generation_id = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="generations")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="generations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.CharField(max_length=200)
    provider_slug = models.CharField(max_length=100)
    provider_name = models.CharField(max_length=100)
    endpoint_tag = models.CharField(max_length=120, blank=True)
    upstream_id = models.CharField(max_length=200, blank=True)
    api_type = models.CharField(max_length=20, default="completions")
    router = models.CharField(max_length=100, blank=True)
    tokens_prompt = models.IntegerField(default=0)
    tokens_completion = models.IntegerField(default=0)
    tokens_reasoning = models.IntegerField(default=0)
    tokens_cached = models.IntegerField(default=0)
    tokens_cache_write = models.IntegerField(default=0)
    usage_estimated = models.BooleanField(
        default=False, help_text="Upstream sent no usage; counted from delivered text"
    )
    cost_nanos = models.BigIntegerField(default=0, help_text="What the organization was charged")
    list_cost_nanos = models.BigIntegerField(default=0, help_text="Cost at the endpoint's list price")
    is_byok = models.BooleanField(default=False)
    cache_discount_nanos = models.BigIntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    ttft_ms = models.IntegerField(null=True, blank=True)
    generation_time_ms = models.IntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=30, blank=True)
    native_finish_reason = models.CharField(max_length=60, blank=True)
    streamed = models.BooleanField(default=False)
    cancelled = models.BooleanField(default=False)
    http_referer = models.CharField(max_length=500, blank=True)
    app_title = models.CharField(max_length=200, blank=True)
    external_user = models.CharField(max_length=256, blank=True)
    provider_responses = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="gen_org_created")]

    def __str__(self) -> str:
        return self.generation_id
