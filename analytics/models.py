"""Usage rollups: settled generations summed per hour and per day, so activity reads stay fast at scale.

Rows are derived data, never edited by hand: `analytics.rollup.rollup_run` deletes and re-inserts whole
buckets from `billing.Generation`, so re-running it over the same window gives the same rows. The
dimension columns carry the same names as on Generation, so one filter (`selectors.Filters.query`)
narrows raw rows and rollups alike.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from organizations.models import ApiKey, Organization


class UsageRollup(models.Model):
    HOUR = "hour"
    DAY = "day"
    GRANULARITIES = [(HOUR, "Hour"), (DAY, "Day")]

    granularity = models.CharField(max_length=4, choices=GRANULARITIES)
    bucket = models.DateTimeField(help_text="Start of the hour or UTC day")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    # DO_NOTHING: a deleted key's rows keep their id (the raw rows SET_NULL theirs); the next rollup of
    # that bucket rewrites them, and no constraint is declared so the delete is never blocked.
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    model = models.CharField(max_length=200)
    provider_slug = models.CharField(max_length=100)
    provider_name = models.CharField(max_length=100)
    endpoint_tag = models.CharField(max_length=120, blank=True)
    app_title = models.CharField(max_length=200, blank=True)
    http_referer = models.CharField(max_length=500, blank=True)
    requests = models.BigIntegerField(default=0)
    cost_nanos = models.BigIntegerField(default=0)
    byok_list_cost_nanos = models.BigIntegerField(default=0, help_text="BYOK usage at the endpoint's list price")
    tokens_prompt = models.BigIntegerField(default=0)
    tokens_completion = models.BigIntegerField(default=0)
    tokens_reasoning = models.BigIntegerField(default=0)
    latency_sum_ms = models.BigIntegerField(default=0)
    latency_n = models.BigIntegerField(default=0, help_text="Generations that reported a latency")

    class Meta:
        indexes = [
            models.Index(fields=["organization", "granularity", "bucket"], name="rollup_org_gran_bucket"),
            # Rankings and catalog popularity read every organization's rows of a window.
            models.Index(fields=["granularity", "bucket"], name="rollup_gran_bucket"),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:00} org {self.organization_id} {self.model}"


class EndpointHealthRollup(models.Model):
    """Per hour x model x endpoint, across all organizations: how its attempts went and how fast it served.

    Built by `rollup_run` in the same transaction as UsageRollup's hours (delete and re-insert), from the
    settled generations: `attempts`/`failures` from each generation's attempt list (so an endpoint that
    failed over to another is counted against the one that failed), the timings from the generations it
    served. Aggregates only: no organization, key or user, so the public model page may chart it.
    """

    bucket = models.DateTimeField(help_text="Start of the hour, UTC")
    model = models.CharField(max_length=200)
    endpoint_tag = models.CharField(max_length=120, blank=True)
    provider_name = models.CharField(max_length=100, blank=True)
    attempts = models.BigIntegerField(default=0)
    failures = models.BigIntegerField(default=0)
    requests = models.BigIntegerField(default=0, help_text="Generations this endpoint served")
    latency_sum_ms = models.BigIntegerField(default=0)
    latency_n = models.BigIntegerField(default=0)
    ttft_sum_ms = models.BigIntegerField(default=0)
    ttft_n = models.BigIntegerField(default=0)
    # Throughput = output tokens / generation time, over the generations that reported a generation time.
    gen_tokens = models.BigIntegerField(default=0)
    gen_time_ms = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["model", "bucket"], name="health_model_bucket")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:00} {self.model} {self.endpoint_tag}"


class RollupWatermark(models.Model):
    """How far the rollups reach. Buckets before `through` are rolled up; readers take raw rows from
    `through` on. `last_generation_id` is the highest Generation id seen, so a generation settled late
    (its created_at already behind `through`) marks its hour for a rebuild."""

    name = models.CharField(max_length=40, primary_key=True)
    through = models.DateTimeField()
    last_generation_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} through {self.through:%Y-%m-%d %H:00}"
