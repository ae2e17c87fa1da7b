"""Maintaining the usage rollups (writes). Readers are in selectors.py.

`rollup_run` is idempotent: each bucket it touches is deleted and rebuilt from the raw generations in
one transaction, so running it twice over the same window leaves the same rows. An hour's rebuild covers
both UsageRollup (per organization) and EndpointHealthRollup (per model x endpoint, every organization,
for the public model page). What it touches:

* every hour from the watermark up to `now - ROLLUP_LAG` (the lag lets in-flight settlement land), and
* the hours of generations settled since the last run whose created_at is already behind the watermark
  (found by Generation id above `last_generation_id`), so late settlements are not lost;

then the UTC days those hours belong to are rebuilt from the hour rows. A transaction-scoped advisory
lock keeps two runs (beat overlap, a manual run) from interleaving.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models.functions import TruncHour
from django.utils import timezone

from analytics.models import RollupWatermark
from billing.models import Generation

WATERMARK = "usage"
ROLLUP_LAG = timedelta(minutes=5)
_LOCK_KEY = 0x616E_726F_6C6C  # "anroll": any fixed bigint, only this task takes it

# Literal SQL (no interpolation): the tables are Django's defaults for UsageRollup and Generation, and
# tests/analytics/test_rollups.py fails if either is renamed. Dimensions: organization x key x user x
# model x provider x endpoint x app (title and referer, as the dashboard labels apps by both).
_DIMS = (
    "organization_id, api_key_id, user_id, model, provider_slug, provider_name, endpoint_tag, app_title, http_referer"
)
_COLUMNS = (
    "granularity, bucket, organization_id, api_key_id, user_id, model, provider_slug, provider_name, endpoint_tag,"
    " app_title, http_referer, requests, cost_nanos, byok_list_cost_nanos, tokens_prompt, tokens_completion,"
    " tokens_reasoning, latency_sum_ms, latency_n"
)
_DELETE_HOURS = "DELETE FROM analytics_usagerollup WHERE granularity = 'hour' AND bucket >= %s AND bucket < %s"
_INSERT_HOURS = (
    "INSERT INTO analytics_usagerollup (" + _COLUMNS + ") "
    "SELECT 'hour', date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', " + _DIMS + ", "
    "count(*), coalesce(sum(cost_nanos), 0), coalesce(sum(list_cost_nanos) FILTER (WHERE is_byok), 0), "
    "coalesce(sum(tokens_prompt), 0), coalesce(sum(tokens_completion), 0), coalesce(sum(tokens_reasoning), 0), "
    "coalesce(sum(latency_ms), 0), count(latency_ms) "
    "FROM billing_generation WHERE created_at >= %s AND created_at < %s GROUP BY 2, " + _DIMS
)
_DELETE_HEALTH = "DELETE FROM analytics_endpointhealthrollup WHERE bucket >= %s AND bucket < %s"
# Two kinds of input row, summed per hour x model x endpoint: one per generation (the timings of the
# endpoint that served it) and one per recorded attempt (status 200 or not). A generation settled with no
# attempt list (older events) counts as one successful attempt on its own endpoint.
_INSERT_HEALTH = (
    "INSERT INTO analytics_endpointhealthrollup (bucket, model, endpoint_tag, provider_name, attempts, failures,"
    " requests, latency_sum_ms, latency_n, ttft_sum_ms, ttft_n, gen_tokens, gen_time_ms) "
    "SELECT bucket, model, endpoint_tag, max(provider_name), sum(attempts), sum(failures), sum(requests),"
    " sum(latency_sum), sum(latency_n), sum(ttft_sum), sum(ttft_n), sum(gen_tokens), sum(gen_time) FROM ("
    " SELECT date_trunc('hour', g.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket, g.model,"
    "  g.endpoint_tag, g.provider_name,"
    "  CASE WHEN jsonb_typeof(g.provider_responses) = 'array' AND jsonb_array_length(g.provider_responses) > 0"
    "   THEN 0 ELSE 1 END AS attempts, 0 AS failures, 1 AS requests,"
    "  coalesce(g.latency_ms, 0) AS latency_sum, (g.latency_ms IS NOT NULL)::int AS latency_n,"
    "  coalesce(g.ttft_ms, 0) AS ttft_sum, (g.ttft_ms IS NOT NULL)::int AS ttft_n,"
    "  CASE WHEN g.generation_time_ms > 0 THEN g.tokens_completion ELSE 0 END AS gen_tokens,"
    "  CASE WHEN g.generation_time_ms > 0 THEN g.generation_time_ms ELSE 0 END AS gen_time"
    " FROM billing_generation g WHERE g.created_at >= %s AND g.created_at < %s"
    " UNION ALL"
    " SELECT date_trunc('hour', g.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',"
    "  coalesce(a->>'model_permaslug', g.model), coalesce(a->>'endpoint_tag', ''),"
    "  coalesce(a->>'provider_name', ''), 1, (coalesce(a->>'status', '') <> '200')::int, 0, 0, 0, 0, 0, 0, 0"
    " FROM billing_generation g CROSS JOIN LATERAL jsonb_array_elements("
    "  CASE WHEN jsonb_typeof(g.provider_responses) = 'array' THEN g.provider_responses ELSE '[]'::jsonb END) a"
    " WHERE g.created_at >= %s AND g.created_at < %s"
    ") rows GROUP BY bucket, model, endpoint_tag"
)
_DELETE_DAY = "DELETE FROM analytics_usagerollup WHERE granularity = 'day' AND bucket = %s"
_INSERT_DAY = (
    "INSERT INTO analytics_usagerollup (" + _COLUMNS + ") "
    "SELECT 'day', %s, " + _DIMS + ", "
    "sum(requests), sum(cost_nanos), sum(byok_list_cost_nanos), sum(tokens_prompt), sum(tokens_completion), "
    "sum(tokens_reasoning), sum(latency_sum_ms), sum(latency_n) "
    "FROM analytics_usagerollup WHERE granularity = 'hour' AND bucket >= %s AND bucket < %s GROUP BY " + _DIMS
)


@dataclass(frozen=True)
class RollupResult:
    through: datetime
    hours_rebuilt: int
    days_rebuilt: int
    late_hours: int


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _rebuild_hours(start: datetime, end: datetime) -> None:
    """Every hour bucket in [start, end), usage and endpoint health, from the raw rows."""
    with connection.cursor() as cursor:
        cursor.execute(_DELETE_HOURS, [start, end])
        cursor.execute(_INSERT_HOURS, [start, end])
        cursor.execute(_DELETE_HEALTH, [start, end])
        cursor.execute(_INSERT_HEALTH, [start, end, start, end])


def _rebuild_days(days: list[datetime]) -> None:
    """Each listed UTC day, summed from its hour rows (all of which are rolled up by now)."""
    with connection.cursor() as cursor:
        for day in days:
            cursor.execute(_DELETE_DAY, [day])
            cursor.execute(_INSERT_DAY, [day, day, day + timedelta(days=1)])


def rollup_run(*, now: datetime | None = None, lag: timedelta = ROLLUP_LAG) -> RollupResult:
    """Bring the rollups up to `floor_hour(now - lag)`; see the module docstring."""
    target = floor_hour((now or timezone.now()) - lag)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        mark = RollupWatermark.objects.select_for_update().filter(name=WATERMARK).first()
        high = Generation.objects.order_by("-id").values_list("id", flat=True).first() or 0
        if mark is None:
            oldest = Generation.objects.order_by("created_at").values_list("created_at", flat=True).first()
            mark = RollupWatermark(name=WATERMARK, through=floor_hour(oldest) if oldest else target)
        start = floor_hour(min(mark.through, target))  # whole hours only, even if the mark was edited
        # Settled since the last run but dated behind the watermark: their hours are stale.
        late = sorted(
            Generation.objects.filter(id__gt=mark.last_generation_id, id__lte=high, created_at__lt=start)
            .annotate(hour=TruncHour("created_at", tzinfo=UTC))
            .order_by()
            .values_list("hour", flat=True)
            .distinct()
        )
        for hour in late:
            _rebuild_hours(hour, hour + timedelta(hours=1))
        if start < target:
            _rebuild_hours(start, target)
        days = {floor_day(hour) for hour in late}
        day = floor_day(start)
        while day < target and start < target:  # the days of the hours just rolled up, if any
            days.add(day)
            day += timedelta(days=1)
        _rebuild_days(sorted(days))
        mark.through = max(mark.through, target)
        mark.last_generation_id = max(mark.last_generation_id, high)
        mark.save()
    fresh = max(0, int((target - start) / timedelta(hours=1)))
    return RollupResult(mark.through, hours_rebuilt=len(late) + fresh, days_rebuilt=len(days), late_hours=len(late))
