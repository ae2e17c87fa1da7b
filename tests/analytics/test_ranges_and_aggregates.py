"""The 1 h and custom ranges, the aggregate CSV export, and the outsider's 404 on every activity view."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from analytics import selectors
from analytics.rollup import rollup_run
from organizations.services import IssuedKey
from tests.analytics.support import settled
from tests.analytics.test_activity_data import client_for, csv_rows
from tests.support import Triad

pytestmark = pytest.mark.django_db


def test_the_one_hour_range_charts_five_minute_buckets_from_the_raw_rows(triad: Triad, api_key: IssuedKey) -> None:
    now = timezone.now()
    settled(triad.org, 1, now - timedelta(minutes=1), key=api_key)
    settled(triad.org, 2, now - timedelta(minutes=1, seconds=5), key=api_key, model="b/two")
    settled(triad.org, 3, now - timedelta(minutes=20), key=api_key)
    settled(triad.org, 4, now - timedelta(hours=3), key=api_key)  # outside the hour
    settled(triad.outsider_org, 5, now - timedelta(minutes=2), model="their/model")
    rollup_run(now=now + timedelta(hours=2))  # rolled up or not, the hour is read from the raw rows
    member = client_for(triad.member)
    data = member.get(f"/o/{triad.org.slug}/activity/series.json", {"range": "1h"}).json()
    assert len(data["buckets"]) == 12
    starts = [datetime.fromisoformat(b) for b in data["buckets"]]
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(starts))
    assert starts[-1] <= now < starts[-1] + timedelta(minutes=5)
    series = {s["label"]: s["data"] for s in data["series"]}
    assert set(series) == {"a/one", "b/two"}
    assert sum(series["a/one"]) == 2 and sum(series["b/two"]) == 1
    assert series["a/one"].count(0) == 10  # empty buckets are shown as zeros
    page = member.get(f"/o/{triad.org.slug}/activity/", {"range": "1h"})
    assert page.status_code == 200 and page.context["totals"].requests == 3


def test_a_custom_range_reads_whole_utc_days_from_and_to(triad: Triad, api_key: IssuedKey) -> None:
    today = timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settled(triad.org, 1, today - timedelta(days=10, hours=-3), key=api_key)  # day -10, 03:00
    settled(triad.org, 2, today - timedelta(days=9, hours=-23), key=api_key)  # day -9, 23:00
    settled(triad.org, 3, today - timedelta(days=8, hours=-1), key=api_key)  # day -8: after "to"
    settled(triad.org, 4, today - timedelta(days=11, hours=-23, minutes=-59), key=api_key)  # before "from"
    rollup_run(now=today - timedelta(days=9, hours=-12))  # half rolled up: day rows, hour rows and raw rows
    first, last = (today - timedelta(days=10)).date(), (today - timedelta(days=9)).date()
    params = {"range": "custom", "from": first.isoformat(), "to": last.isoformat()}
    member = client_for(triad.member)
    base = f"/o/{triad.org.slug}/activity"
    page = member.get(f"{base}/", params)
    assert page.status_code == 200 and page.context["range"] == "custom"
    assert page.context["totals"].requests == 2
    assert 'value="custom" checked' in page.content.decode()
    data = member.get(f"{base}/series.json", params).json()
    assert data["range"] == "custom" and len(data["buckets"]) == 2
    assert data["series"] == [{"label": "a/one", "data": [1, 1]}]
    one_day = member.get(f"{base}/series.json", params | {"to": first.isoformat()}).json()
    assert len(one_day["buckets"]) == 24 and one_day["series"][0]["data"][3] == 1  # per hour for a single day
    listing = member.get(f"{base}/generations/", params)
    mine = [f"gen-{triad.org.pk}-1", f"gen-{triad.org.pk}-2"]
    assert [g.generation_id for g in listing.context["generations"]] == mine[::-1]
    exported = csv_rows(member.get(f"{base}/generations.csv", params))
    assert sorted(r["generation_id"] for r in exported) == mine


@pytest.mark.parametrize(
    ("date_from", "date_to", "message"),
    [
        ("2026-03-10", "2026-03-01", "start date must be on or before the end date"),
        ("2024-01-01", "2025-06-01", "at most 366 days"),
        ("yesterday", "2026-03-01", "YYYY-MM-DD"),
        ("", "", "YYYY-MM-DD"),
        ("2026-01-01", "2999-01-01", "cannot be in the future"),
    ],
)
def test_a_bad_custom_range_is_refused_with_a_reason(triad: Triad, date_from: str, date_to: str, message: str) -> None:
    member = client_for(triad.member)
    base = f"/o/{triad.org.slug}/activity"
    params = {"range": "custom", "from": date_from, "to": date_to}
    page = member.get(f"{base}/", params)
    assert page.status_code == 400
    assert message in page.content.decode() and "Showing the last 7 days instead" in page.content.decode()
    assert page.context["window"].range_key == "7d"
    series = member.get(f"{base}/series.json", params)
    assert series.status_code == 400 and message in series.json()["error"]
    for export in ("generations.csv", "aggregates.csv"):
        response = member.get(f"{base}/{export}", params)
        assert response.status_code == 400 and message in response.content.decode()


def test_the_longest_custom_range_is_accepted() -> None:
    now = datetime(2026, 12, 3, 12, tzinfo=UTC)
    window = selectors.custom_window("2025-12-03", "2026-12-03", now=now)
    assert len(window.starts) == 366 and window.until == datetime(2026, 12, 4, tzinfo=UTC)
    with pytest.raises(selectors.RangeError):
        selectors.custom_window("2025-12-02", "2026-12-03", now=now)


def test_the_aggregate_export_has_the_charts_rows_filters_and_grouping(triad: Triad, api_key: IssuedKey) -> None:
    now = timezone.now()
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    settled(triad.org, 1, now - timedelta(days=2), key=api_key, app_title="Cool Chat", cost_nanos=1_500_000)
    settled(triad.org, 2, now - timedelta(days=2), key=api_key, app_title="Cool Chat", tokens_reasoning=3)
    settled(triad.org, 3, now - timedelta(days=2), key=api_key, http_referer="https://docs.example.org/x")
    settled(triad.org, 4, now - timedelta(days=1), key=api_key, model="b/two", app_title="Cool Chat")
    settled(triad.org, 5, now - timedelta(days=20), key=api_key)  # outside 7 d
    settled(triad.outsider_org, 6, now - timedelta(days=1), app_title="Cool Chat")
    rollup_run(now=now - timedelta(days=1, hours=6))  # part rolled up
    member = client_for(triad.member)
    url = f"/o/{triad.org.slug}/activity/aggregates.csv"
    response = member.get(url, {"range": "7d", "group": "app"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert list(rows[0]) == [
        "bucket_start",
        "app",
        "requests",
        "tokens_prompt",
        "tokens_completion",
        "tokens_reasoning",
        "cost_usd",
    ]
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    got = [(r["bucket_start"], r["app"], r["requests"], r["tokens_reasoning"], r["cost_usd"]) for r in rows]
    bucket_2, bucket_1 = day(2), day(1)
    assert got == [
        (bucket_2, "Cool Chat", "2", "3", "0.001501"),
        (bucket_2, "docs.example.org", "1", "0", "0.000001"),
        (bucket_1, "Cool Chat", "1", "0", "0.000001"),
    ]
    # The same filters as the chart: one model only.
    only_b = csv_rows(member.get(url, {"range": "7d", "group": "model", "model": "b/two"}))
    assert [(r["model"], r["requests"]) for r in only_b] == [("b/two", "1")]
    # Every row sums to the chart's total.
    chart = member.get(
        f"/o/{triad.org.slug}/activity/series.json", {"range": "7d", "group": "app", "metric": "requests"}
    ).json()
    assert sum(int(r["requests"]) for r in rows) == chart["total"] == 4


def test_an_outsider_gets_404_on_every_activity_view(triad: Triad, api_key: IssuedKey) -> None:
    settled(triad.org, 1, timezone.now(), key=api_key)
    outsider = client_for(triad.outsider)
    base = f"/o/{triad.org.slug}"
    for path in (
        "/activity/",
        "/activity/series.json",
        "/activity/generations/",
        f"/activity/generations/gen-{triad.org.pk}-1/",
        "/activity/generations.csv",
        "/activity/aggregates.csv",
        "/prompt-logs.jsonl",
    ):
        for params in ({}, {"range": "1h"}, {"range": "custom", "from": "2026-01-01", "to": "2026-01-02"}):
            assert outsider.get(base + path, params).status_code == 404, (path, params)
