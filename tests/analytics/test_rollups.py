"""The hour/day rollups: idempotent rebuilds, late settlements, and the same answers as the raw rows."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from analytics import selectors
from analytics.models import RollupWatermark, UsageRollup
from analytics.rollup import floor_hour, rollup_run
from analytics.tasks import rollup_usage
from billing.models import Generation
from organizations.services import IssuedKey, api_key_create
from tests.analytics.support import settled
from tests.support import Triad

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(triad: Triad, api_key: IssuedKey) -> Triad:
    """~400 generations over 35 days across models, keys, providers, apps, BYOK, null latency; plus an outsider."""
    rng = random.Random(12)
    other_key = api_key_create(organization=triad.org, name="second", created_by=triad.member)
    now = timezone.now()
    apps = [("", ""), ("Cool Chat", ""), ("", "https://docs.example.org/a"), ("", "https://docs.example.org/b")]
    rows = []
    for n in range(400):
        key = rng.choice([api_key, other_key, None])
        title, referer = rng.choice(apps)
        provider = rng.choice(["prov", "other"])
        rows.append(
            Generation(
                generation_id=f"g{n}",
                organization=triad.org if n % 7 else triad.outsider_org,
                api_key=key.api_key if key else None,
                user=key.api_key.created_by if key else None,
                model=rng.choice(["a/one", "b/two", "c/three"]),
                provider_slug=provider,
                provider_name=provider.title(),
                endpoint_tag=provider,
                app_title=title,
                http_referer=referer,
                tokens_prompt=rng.randint(0, 900),
                tokens_completion=rng.randint(0, 300),
                tokens_reasoning=rng.randint(0, 50),
                cost_nanos=rng.randint(0, 10**9),
                list_cost_nanos=rng.randint(0, 10**9),
                is_byok=rng.random() < 0.2,
                latency_ms=rng.choice([None, rng.randint(50, 5000)]),
                created_at=now - timedelta(minutes=rng.randint(0, 35 * 24 * 60)),
            )
        )
    Generation.objects.bulk_create(rows)
    return triad


def everything(triad: Triad) -> dict[str, Any]:
    """Every rollup-backed read the dashboard makes, over each range, group and metric."""
    org, out = triad.org, {}
    for range_key in selectors.RANGES:
        window = selectors.activity_window(range_key)
        filters = selectors.Filters(model="b/two") if range_key == "7d" else None
        out[range_key, "totals"] = selectors.activity_totals(organization=org, since=window.since, filters=filters)
        for group in selectors.GROUPS:
            out[range_key, group] = selectors.activity_grouped(
                organization=org, since=window.since, group=group, filters=filters
            )
            for metric in selectors.METRICS:
                out[range_key, group, metric] = selectors.activity_series(
                    organization=org, window=window, metric=metric, group=group, filters=filters
                )
    out["choices"] = selectors.activity_filter_choices(organization=org, since=selectors.activity_since("30d"))
    out["app-filter"] = selectors.activity_totals(
        organization=org, since=selectors.activity_since("30d"), filters=selectors.Filters(app="docs.example.org")
    )
    return out


def rollup_rows() -> list[tuple[Any, ...]]:
    return list(UsageRollup.objects.order_by().values_list().order_by("granularity", "bucket", "organization", "id"))


def test_raw_and_rolled_up_reads_agree(seeded: Triad) -> None:
    raw = everything(seeded)
    assert raw["30d", "totals"].requests > 0  # the seeded data is inside the windows
    rollup_run(now=timezone.now() - timedelta(hours=30))  # half-way: days, hours and raw rows mixed
    assert RollupWatermark.objects.get().through < timezone.now()
    assert everything(seeded) == raw
    rollup_run(now=timezone.now() + timedelta(hours=2))  # everything rolled up, nothing read raw
    assert everything(seeded) == raw
    assert UsageRollup.objects.filter(granularity="day").exists()


def test_the_chart_json_is_the_same_from_rollups(seeded: Triad) -> None:
    client = Client()
    client.force_login(seeded.member)
    url = f"/o/{seeded.org.slug}/activity/series.json"
    params = {"range": "30d", "metric": "cost", "group": "app"}
    before = client.get(url, params).json()
    rollup_run(now=timezone.now() + timedelta(hours=2))
    assert client.get(url, params).json() == before
    assert Client().get(url, params).status_code in (302, 404)  # signed out: never the data


def test_rerunning_over_the_same_window_gives_the_same_rows(seeded: Triad) -> None:
    now = timezone.now()
    first = rollup_run(now=now)
    rows = [r[1:] for r in rollup_rows()]  # ids change on a rebuild, the content must not
    assert first.hours_rebuilt > 24 * 30 and rows
    again = rollup_run(now=now)
    assert (again.hours_rebuilt, again.days_rebuilt) == (0, 0)  # nothing new: nothing rewritten
    RollupWatermark.objects.filter().update(through=now - timedelta(days=3))  # re-run the last three days
    rollup_run(now=now)
    assert Counter(r[1:] for r in rollup_rows()) == Counter(rows)
    RollupWatermark.objects.all().delete()  # a full rebuild from scratch
    rollup_run(now=now)
    assert Counter(r[1:] for r in rollup_rows()) == Counter(rows)
    hours = UsageRollup.objects.filter(granularity="hour", organization=seeded.org)
    assert (
        sum(hours.values_list("requests", flat=True))
        == Generation.objects.filter(
            organization=seeded.org, created_at__lt=floor_hour(now - timedelta(minutes=5))
        ).count()
    )


def test_a_generation_settled_late_is_rolled_into_its_old_hour(triad: Triad) -> None:
    now = timezone.now()
    settled(triad.org, 1, now - timedelta(days=3))
    rollup_run(now=now)
    since = selectors.activity_since("30d")
    assert selectors.activity_totals(organization=triad.org, since=since).requests == 1
    settled(triad.org, 2, now - timedelta(days=3, minutes=1))  # behind the watermark: not yet in a rollup
    assert selectors.activity_totals(organization=triad.org, since=since).requests == 1
    result = rollup_run(now=now)
    assert result.late_hours == 1
    assert selectors.activity_totals(organization=triad.org, since=since).requests == 2
    day = UsageRollup.objects.get(granularity="day", organization=triad.org)
    assert day.requests == 2 and day.tokens_prompt == 20


def test_the_task_is_scheduled_and_runs(triad: Triad) -> None:
    entries = [e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "analytics.rollup_usage" in entries
    settled(triad.org, 1, timezone.now() - timedelta(hours=2))
    assert rollup_usage()["hours"] >= 1
    assert UsageRollup.objects.filter(granularity="hour", organization=triad.org).count() == 1


def test_the_literal_sql_names_the_real_tables() -> None:
    assert UsageRollup._meta.db_table == "analytics_usagerollup"
    assert Generation._meta.db_table == "billing_generation"
