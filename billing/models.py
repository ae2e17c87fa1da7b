"""The money model: an append-only, double-entry ledger in integer nano-dollars (1e-9 USD)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from organizations.models import ApiKey, Organization


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
        # Usage the upstream consumed beyond the request's hold: charged to the platform, not the client.
        USAGE_LOSS = "usage_loss", "Usage beyond the hold (platform loss)"

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
    # The web plugin's search, when the request made one (GET /generation reports both).
    web_search_engine = models.CharField(max_length=32, blank=True, default="")
    num_search_results = models.IntegerField(null=True, blank=True)
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


class PromptLog(models.Model):
    """An opted-in organization's request and response bodies for one generation, encrypted.

    `payload` is a Fernet token (billing/prompt_log.py, PROMPT_LOG_ENCRYPTION_KEYS) sealed by the
    gateway before the usage event left the process: plaintext never reaches Redis, Celery or this
    table. Written by settlement next to the Generation; purged after the organization's retention.
    """

    generation_id = models.CharField(max_length=64, unique=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="prompt_logs")
    payload = models.TextField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "created_at"], name="promptlog_org_created")]

    def __str__(self) -> str:
        return f"prompt log {self.generation_id}"


class UsageDeadLetter(models.Model):
    """A usage event settlement could not write even on its own: kept, with the error, for an operator.

    Its charge stays counted by the gate (the organization's `spent`), and `usage_deadletter_retry`
    posts it after a fix. The payload is the queued event's raw JSON (bytes: it may hold the very NUL
    that PostgreSQL text refused).
    """

    generation_id = models.CharField(max_length=200, unique=True)
    organization_id = models.BigIntegerField(db_index=True, help_text="No foreign key: an unknown org is a reason")
    msg_id = models.CharField(max_length=64, help_text="The usage stream message it arrived as")
    charge_nanos = models.BigIntegerField()
    payload = models.BinaryField()
    error = models.TextField()
    attempts = models.IntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"dead letter {self.generation_id}"


class ReconciliationRun(models.Model):
    """One comparison of what the gate charged with what the ledger posted (billing.usage_reconcile,
    every 5 minutes), kept so operators see in the admin when the books last agreed and what did not."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    gaps = models.JSONField(default=list, help_text="One object per organization whose numbers disagree")
    dead_lettered = models.IntegerField(default=0, help_text="Usage events waiting in the dead-letter table")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"reconciliation {self.created_at:%Y-%m-%d %H:%M} ({'agreed' if self.agreed else 'gaps'})"

    @property
    def agreed(self) -> bool:
        return not self.gaps and self.dead_lettered == 0


# --- Payments: buying credits by card (Stripe) and USDC (EVM chains) -------------------------------
# Amounts here are nano-dollars like everything else; Stripe cents and token base units are
# converted inside billing/payments/stripe_api.py and chain.py and never stored.


class TopUp(models.Model):
    """One card purchase of credits: a Checkout Session, or an off-session auto top-up charge.

    The row is created before Stripe is called, so its public id is the idempotency key of that
    call and the pointer in the session's metadata. Amounts are taken from this row, never from
    the webhook, which only says "this top-up was paid".
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        CHECKOUT = "checkout", "Checkout"
        AUTO = "auto", "Auto top-up"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="topups")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.CHECKOUT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    credit_nanos = models.BigIntegerField(help_text="Credit the organization receives")
    fee_nanos = models.BigIntegerField(help_text="Card fee, booked as fee revenue")
    save_card = models.BooleanField(default=False, help_text="Keep the card for auto top-up")
    stripe_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    refunded_nanos = models.BigIntegerField(default=0, help_text="Cumulative amount refunded to the card")
    credit_reversed_nanos = models.BigIntegerField(default=0, help_text="Credit taken back by refunds")
    dispute_id = models.CharField(max_length=255, blank=True)
    dispute_status = models.CharField(max_length=40, blank=True)
    disputed_credit_nanos = models.BigIntegerField(default=0, help_text="Credit moved to disputes_held")
    receipt_url = models.URLField(max_length=500, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    # Auto top-up only: Stripe calls made with distinct idempotency keys (a new key is used only once
    # Stripe is known to hold no PaymentIntent for this attempt), and the key of the latest call.
    attempts = models.PositiveSmallIntegerField(default=0)
    idempotency_key = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one auto top-up in flight per organization: a second beat run cannot charge twice.
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(source="auto", status="pending"),
                name="one_pending_auto_topup_per_org",
            ),
        ]

    def __str__(self) -> str:
        return f"top-up {self.public_id} ({self.status})"

    @property
    def total_nanos(self) -> int:
        return self.credit_nanos + self.fee_nanos


class StripeEvent(models.Model):
    """Every verified webhook event, stored once by its id: the deduplication record and audit log."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        IGNORED = "ignored", "Ignored"
        DEFERRED = "deferred", "Deferred until its top-up is paid"
        REJECTED = "rejected", "Rejected (needs an operator)"
        DISMISSED = "dismissed", "Dismissed by an operator"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    stripe_created = models.BigIntegerField(help_text="Stripe's event timestamp (unix seconds)")
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    note = models.CharField(max_length=500, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class AutoTopUpRule(models.Model):
    """ "When the balance falls below threshold, buy amount" with the organization's saved card."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="auto_topup_rule")
    enabled = models.BooleanField(default=False)
    threshold_nanos = models.BigIntegerField()
    amount_nanos = models.BigIntegerField()
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_payment_method_id = models.CharField(max_length=255, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"auto top-up for {self.organization_id}"

    @property
    def has_card(self) -> bool:
        return bool(self.stripe_customer_id and self.stripe_payment_method_id)


class DepositAddress(models.Model):
    """An organization's USDC deposit address on one chain, derived from the xpub (no private key here)."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="deposit_addresses")
    chain_id = models.BigIntegerField()
    address = models.CharField(max_length=42, help_text="EIP-55 checksummed")
    derivation_index = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "chain_id"], name="one_deposit_address_per_chain"),
            models.UniqueConstraint(fields=["chain_id", "address"], name="unique_deposit_address"),
        ]

    def __str__(self) -> str:
        return f"{self.address} on {self.chain_id}"


class ChainCursor(models.Model):
    """How far the scanner has read a chain; each scan re-reads a window behind it for reorgs."""

    chain_id = models.BigIntegerField(unique=True)
    # None until the chain has a starting point (a configured start block, or the head when the first
    # deposit address was shown): the scanner never guesses one, so it can never skip a deposit.
    next_block = models.BigIntegerField(null=True, blank=True)
    head_block = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True, help_text="Heartbeat: moves on every scan attempt")
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, help_text="Set while the chain is unreachable")
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"chain {self.chain_id} at {self.next_block}"


class CryptoDeposit(models.Model):
    """One USDC Transfer log into a deposit address. Credited once, after finality, by its log key."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmations"
        CREDITED = "credited", "Credited"
        ORPHANED = "orphaned", "Dropped by a reorg"
        BELOW_MINIMUM = "below_minimum", "Below the minimum (needs an operator)"
        DISMISSED = "dismissed", "Dismissed by an operator"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="crypto_deposits")
    deposit_address = models.ForeignKey(DepositAddress, on_delete=models.PROTECT, related_name="deposits")
    chain_id = models.BigIntegerField()
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField()
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    token_address = models.CharField(max_length=42)
    from_address = models.CharField(max_length=42)
    amount_nanos = models.BigIntegerField(help_text="Gross amount received")
    fee_nanos = models.BigIntegerField(default=0)
    credit_nanos = models.BigIntegerField(default=0)
    status = models.CharField(max_length=15, choices=Status.choices, default=Status.PENDING)
    confirmations = models.IntegerField(default=0)
    note = models.CharField(max_length=500, blank=True, help_text="Why it is not credited, or who acted on it")
    created_at = models.DateTimeField(auto_now_add=True)
    credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "tx_hash", "log_index"], name="unique_transfer_log"),
        ]

    def __str__(self) -> str:
        return f"{self.chain_id}:{self.tx_hash}:{self.log_index}"
