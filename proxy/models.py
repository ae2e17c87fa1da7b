"""The catalog: providers, models, and endpoints (a model served by a provider at a price)."""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Provider(models.Model):
    class Adapter(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages"
        GEMINI = "gemini", "Google Gemini"

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    adapter = models.CharField(max_length=20, choices=Adapter.choices, default=Adapter.OPENAI)
    base_url = models.URLField(max_length=300, blank=True, help_text="Overridden by <SLUG>_BASE_URL")
    requires_api_key = models.BooleanField(
        default=True, help_text="Off for keyless hosts (a local vLLM or Ollama): served without <SLUG>_API_KEY"
    )
    # Data policy, as OpenRouter tracks it. Unknown policies are assumed to retain and train.
    retains_prompts = models.BooleanField(default=True)
    trains_on_prompts = models.BooleanField(default=True)
    zdr = models.BooleanField(default=False, help_text="Zero data retention")
    supports_cancellation = models.BooleanField(default=True)
    privacy_policy_url = models.URLField(max_length=300, blank=True, null=True)
    terms_of_service_url = models.URLField(max_length=300, blank=True, null=True)
    status_page_url = models.URLField(max_length=300, blank=True, null=True)
    headquarters = models.CharField(max_length=2, blank=True, null=True)
    datacenters = models.JSONField(default=list, blank=True)
    connect_timeout_ms = models.IntegerField(default=5_000)
    first_byte_timeout_ms = models.IntegerField(default=120_000)
    idle_timeout_ms = models.IntegerField(default=60_000)
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Model(models.Model):
    """A routable model id, exactly as OpenRouter lists it (`author/slug`, or `author/slug:free`)."""

    slug = models.CharField(max_length=200, unique=True, help_text="The model id, e.g. openai/gpt-4o")
    canonical_slug = models.CharField(max_length=200, blank=True)
    hugging_face_id = models.CharField(max_length=200, blank=True, null=True)
    name = models.CharField(max_length=200)
    created = models.BigIntegerField(default=0, help_text="Unix seconds")
    description = models.TextField(blank=True)
    context_length = models.IntegerField(default=0)
    modality = models.CharField(max_length=100, blank=True)
    input_modalities = models.JSONField(default=list, blank=True)
    output_modalities = models.JSONField(default=list, blank=True)
    tokenizer = models.CharField(max_length=40, blank=True)
    instruct_type = models.CharField(max_length=40, blank=True, null=True)
    supported_parameters = models.JSONField(default=list, blank=True)
    default_parameters = models.JSONField(default=None, blank=True, null=True)
    per_request_limits = models.JSONField(default=None, blank=True, null=True)
    is_moderated = models.BooleanField(default=False)
    knowledge_cutoff = models.CharField(max_length=20, blank=True, null=True)
    expiration_date = models.CharField(max_length=20, blank=True, null=True)
    reasoning = models.JSONField(default=None, blank=True, null=True)
    # The headline price card OpenRouter shows for the model (its representative endpoint),
    # as per-token decimal strings exactly as in /models. Billing never reads this.
    pricing = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True, help_text="Other /models fields kept verbatim")
    is_enabled = models.BooleanField(default=True)
    # Set by catalog_load when the model left the catalog file; lets a later load tell its own
    # disabling apart from an operator's.
    retired = models.BooleanField(default=False, help_text="Absent from the last catalog file loaded")
    # Catalog facts an operator edited in the admin: catalog loads leave these fields alone until
    # the admin's "revert to catalog" clears the list.
    overridden = models.JSONField(default=list, blank=True, editable=False, help_text="Fields edited by an operator")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Endpoint(models.Model):
    """A model served by a provider. Prices are integer nano-dollars per million tokens."""

    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="endpoints")
    provider = models.ForeignKey(Provider, on_delete=models.PROTECT, related_name="endpoints")
    tag = models.CharField(max_length=120, help_text="Routing slug, e.g. deepinfra or deepinfra/turbo")
    upstream_model = models.CharField(max_length=200, help_text="The model name the provider expects")
    variant = models.CharField(max_length=20, default="standard", help_text="standard, free, ...")
    quantization = models.CharField(max_length=20, blank=True, null=True)
    context_length = models.IntegerField(default=0)
    max_completion_tokens = models.IntegerField(null=True, blank=True)
    max_prompt_tokens = models.IntegerField(null=True, blank=True)
    prompt_nanos_per_mtok = models.BigIntegerField(default=0)
    completion_nanos_per_mtok = models.BigIntegerField(default=0)
    cache_read_nanos_per_mtok = models.BigIntegerField(null=True, blank=True)
    cache_write_nanos_per_mtok = models.BigIntegerField(null=True, blank=True)
    reasoning_nanos_per_mtok = models.BigIntegerField(null=True, blank=True)
    request_nanos = models.BigIntegerField(default=0)
    image_nanos = models.BigIntegerField(default=0)
    supported_parameters = models.JSONField(default=list, blank=True)
    supports_implicit_caching = models.BooleanField(default=False)
    # Published figures (the catalog snapshot's, or an operator's): what routing and /endpoints use
    # until this gateway has measured the endpoint itself (docs/routing.md "Seeded statistics").
    published_uptime = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text="Percent of requests that succeeded, as published (OpenRouter's 1-day uptime)",
    )
    published_latency_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Median time to first token, milliseconds, as published"
    )
    published_throughput_tps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Median output tokens per second, as published"
    )
    is_enabled = models.BooleanField(default=True)
    # Absent endpoints are disabled, not deleted: generations reference them.
    retired = models.BooleanField(default=False, help_text="Absent from the last catalog file loaded")
    # Catalog facts (prices, limits) an operator edited in the admin: see Model.overridden.
    overridden = models.JSONField(default=list, blank=True, editable=False, help_text="Fields edited by an operator")

    class Meta:
        ordering = ["model__slug", "prompt_nanos_per_mtok"]
        constraints = [models.UniqueConstraint(fields=["model", "tag"], name="unique_endpoint_tag")]

    def __str__(self) -> str:
        return f"{self.model.slug} @ {self.tag}"
