from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class Organization(models.Model):
    """The tenant: owns credits, keys, BYOK secrets and usage."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    is_personal = models.BooleanField(default=False)
    # Privacy: prompts and completions are stored only when an organization opts in.
    log_prompts = models.BooleanField(default=False)
    # How long stored prompt logs are kept (billing.PromptLog; purged hourly by billing.prompt_log_purge).
    log_prompts_retention_days = models.PositiveSmallIntegerField(default=30)
    # BYOK: when the org's own provider key fails, may we fall back to the platform's key?
    byok_allow_platform_fallback = models.BooleanField(default=True)
    # Data policy (organizations/policy.py writes it; proxy/gateway/policy.py enforces it on every
    # request of every key, as the stricter of the request's `provider` object and this).
    policy_deny_data_collection = models.BooleanField(
        default=False, help_text="Never route to providers that may train on or retain prompts"
    )
    policy_zdr_only = models.BooleanField(default=False, help_text="Only Zero-Data-Retention endpoints")
    policy_allowed_providers = models.JSONField(
        default=list, blank=True, help_text="Provider slugs the organization's keys may use; empty: any"
    )
    policy_blocked_providers = models.JSONField(default=list, blank=True, help_text="Provider slugs never used")
    policy_allowed_models = models.JSONField(
        default=list, blank=True, help_text="Model ids or author/* patterns the keys may use; empty: any"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "user"], name="unique_membership")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage members and keys; members only use keys."""
        return self.role in (self.Role.OWNER, self.Role.ADMIN)


def _invitation_expiry() -> datetime:
    return timezone.now() + timedelta(days=7)


class Invitation(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    # Only the SHA-256 of the emailed token is kept, like API keys.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.email} -> {self.organization}"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class ApiKey(models.Model):
    """The tenant credential. The plaintext is shown once; only its SHA-256 is stored.

    `hash` is the lowercase hex SHA-256 of the full key: OpenRouter's key-management API uses exactly
    that as the key's public identifier (`/api/v1/keys/{hash}`). A key carries 256 bits of randomness,
    so the digest cannot be reversed or brute-forced, and a pepper would add nothing.
    """

    class LimitReset(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=120)
    label = models.CharField(max_length=40, help_text="Masked key, e.g. sk-or-v1-0e6...1c96")
    hash = models.CharField(max_length=64, unique=True)
    is_management = models.BooleanField(default=False)
    disabled = models.BooleanField(default=False)
    limit_nanos = models.BigIntegerField(null=True, blank=True, help_text="Credit cap in nano-dollars")
    limit_reset = models.CharField(max_length=10, choices=LimitReset.choices, null=True, blank=True)
    include_byok_in_limit = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Key-level model restriction (on top of the organization's): model ids or author/* patterns; empty: any.
    allowed_models = models.JSONField(default=list, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.label})"


class ProviderCredential(models.Model):
    """BYOK: an organization's own key for one upstream provider, encrypted at rest.

    The plaintext is written once and never rendered again; pages and the admin show `hint` only.
    `organizations.byok` is the only code that encrypts or decrypts `secret_encrypted`.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="provider_credentials")
    provider_slug = models.SlugField(max_length=60, help_text="The upstream provider, e.g. openai or anthropic")
    secret_encrypted = models.TextField(editable=False, help_text="Fernet token; never shown")
    hint = models.CharField(max_length=20, help_text="Last characters of the secret, e.g. ...abcd")
    is_enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_slug"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "provider_slug"], name="unique_credential_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.provider_slug} for {self.organization} ({self.hint})"


class AuditEvent(models.Model):
    """One change to an organization: who, when, from where, and the before/after of what changed.

    Append-only: `organizations.audit` is the only writer, rows are never updated (the model refuses,
    and on PostgreSQL a trigger refuses), and only the retention purge deletes them. Secrets never
    appear in `before`/`after` (a key's label or a credential's hint at most).
    """

    class Source(models.TextChoices):
        DASHBOARD = "dashboard", "Dashboard"
        API = "api", "API"
        CLI = "cli", "CLI"
        ADMIN = "admin", "Admin"
        SYSTEM = "system", "System"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="audit_events")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=60, db_index=True, help_text="e.g. key.created, member.role_changed")
    target = models.CharField(max_length=200, blank=True, help_text="What was changed, as shown to people")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept apart from the FK so the record still says who it was after the user is deleted.
    actor_label = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"], name="audit_org_created")]

    def __str__(self) -> str:
        return f"{self.action} in {self.organization_id} by {self.actor_label or 'system'}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("Audit events are removed only by the retention purge.")
