"""The activity JSON, the generation list and detail, and the streamed CSV export: org-scoped, exact."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from analytics import selectors
from billing.models import Generation
from organizations.models import Organization
from organizations.services import IssuedKey
from tests.support import Triad

pytestmark = pytest.mark.django_db


def gen(
    org: Organization,
    key: IssuedKey | None,
    n: int,
    *,
    model: str = "a/one",
    cost: int = 1_000,
    hours_ago: float = 0,
    **extra: Any,
) -> Generation:
    return Generation.objects.create(
        generation_id=f"gen-{org.pk}-{n}",
        organization=org,
        api_key=key.api_key if key else None,
        model=model,
        provider_slug=extra.pop("provider_slug", "prov"),
        provider_name="Prov",
        tokens_prompt=10,
        tokens_completion=5,
        cost_nanos=cost,
        latency_ms=100,
        created_at=timezone.now() - timedelta(hours=hours_ago),
        **extra,
    )


def client_for(user: object) -> Client:
    c = Client()
    c.force_login(user)  # type: ignore[arg-type]
    return c


def csv_rows(response: Any) -> list[dict[str, str]]:
    """Read the streamed body the way ASGI does: chunk by chunk from the async iterator."""

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    body = async_to_sync(collect)().decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_window_is_whole_buckets_ending_now() -> None:
    now = datetime(2026, 12, 3, 14, 25, tzinfo=UTC)
    day = selectors.activity_window("1d", now=now)
    assert len(day.starts) == 24 and day.unit == "hour"
    assert day.starts[-1] == datetime(2026, 12, 3, 14, tzinfo=UTC)
    month = selectors.activity_window("30d", now=now)
    assert (len(month.starts), month.starts[0]) == (30, datetime(2026, 11, 4, tzinfo=UTC))
    assert selectors.activity_window("forever", now=now).range_key == "7d"


def test_the_series_stacks_by_model_with_empty_buckets_as_zeros(triad: Triad, api_key: IssuedKey) -> None:
    gen(triad.org, api_key, 1, model="a/one", cost=1_500_000_000)
    gen(triad.org, api_key, 2, model="a/one", cost=500_000_000)
    gen(triad.org, api_key, 3, model="b/two", cost=250_000_000, hours_ago=48)
    gen(triad.outsider_org, None, 4, model="their/model", hours_ago=1)

    url = f"/o/{triad.org.slug}/activity/series.json"
    data = client_for(triad.member).get(url, {"range": "7d", "metric": "requests"}).json()
    assert len(data["labels"]) == len(data["buckets"]) == 7
    series = {s["label"]: s["data"] for s in data["series"]}
    assert set(series) == {"a/one", "b/two"}  # never the outsider's model
    assert series["a/one"] == [0, 0, 0, 0, 0, 0, 2]
    assert sum(series["b/two"]) == 1 and series["b/two"][-1] == 0
    assert data["total"] == 3

    cost = client_for(triad.member).get(url, {"range": "7d", "metric": "cost"}).json()
    assert cost["unit"] == "USD"
    assert {s["label"]: s["data"][-1] for s in cost["series"]}["a/one"] == 2.0

    hourly = client_for(triad.member).get(url, {"range": "1d", "metric": "tokens"}).json()
    assert len(hourly["labels"]) == 24
    assert [s["label"] for s in hourly["series"]] == ["a/one"]  # 48 h ago is outside 24 h
    assert hourly["series"][0]["data"][-1] == 30


def test_the_series_folds_the_long_tail_into_other(triad: Triad) -> None:
    for n in range(selectors.TOP_SERIES + 3):
        gen(triad.org, None, n, model=f"m/{n:02d}")
    data = client_for(triad.owner).get(f"/o/{triad.org.slug}/activity/series.json").json()
    labels = [s["label"] for s in data["series"]]
    assert len(labels) == selectors.TOP_SERIES + 1 and labels[-1] == "Other"
    assert data["series"][-1]["data"][-1] == 3
    assert data["total"] == selectors.TOP_SERIES + 3


def test_by_app_shows_the_x_title_else_the_referer_host(triad: Triad) -> None:
    gen(triad.org, None, 1, app_title="Cool Chat", http_referer="https://cool.example/chat")
    gen(triad.org, None, 2, http_referer="https://docs.example.org/a/page")
    gen(triad.org, None, 3, http_referer="https://docs.example.org/another")
    page = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/", {"group": "app"})
    assert [(r["label"], r["requests"]) for r in page.context["grouped"]] == [
        ("docs.example.org", 2),
        ("Cool Chat", 1),
    ]
    data = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/series.json", {"group": "app"}).json()
    assert sorted(s["label"] for s in data["series"]) == ["Cool Chat", "docs.example.org"]


def test_a_filter_narrows_the_series_list_and_export(triad: Triad) -> None:
    gen(triad.org, None, 1, model="a/one")
    gen(triad.org, None, 2, model="b/two", provider_slug="other")
    member = client_for(triad.member)
    base = f"/o/{triad.org.slug}/activity"
    data = member.get(f"{base}/series.json", {"model": "b/two"}).json()
    assert [s["label"] for s in data["series"]] == ["b/two"]
    listing = member.get(f"{base}/generations/", {"provider": "other"})
    assert [g.generation_id for g in listing.context["generations"]] == [f"gen-{triad.org.pk}-2"]
    rows = csv_rows(member.get(f"{base}/generations.csv", {"model": "a/one"}))
    assert [r["model"] for r in rows] == ["a/one"]


def test_the_generation_list_pages_newest_first(triad: Triad) -> None:
    for n in range(selectors.PAGE_SIZE + 5):
        gen(triad.org, None, n, hours_ago=n / 10)
    member = client_for(triad.member)
    first = member.get(f"/o/{triad.org.slug}/activity/generations/")
    assert first.status_code == 200
    assert len(first.context["generations"]) == selectors.PAGE_SIZE
    assert first.context["generations"][0].generation_id == f"gen-{triad.org.pk}-0"
    assert first.context["total"] == selectors.PAGE_SIZE + 5
    second = member.get(f"/o/{triad.org.slug}/activity/generations/", {"before": first.context["next_cursor"]})
    assert second.context["next_cursor"] == ""
    assert [g.generation_id for g in second.context["generations"]][
        -1
    ] == f"gen-{triad.org.pk}-{selectors.PAGE_SIZE + 4}"
    assert len(second.context["generations"]) == 5


def test_the_generation_detail_shows_tokens_cost_timing_and_attempts(triad: Triad, api_key: IssuedKey) -> None:
    g = gen(
        triad.org,
        api_key,
        1,
        cost=20_295,
        tokens_reasoning=7,
        ttft_ms=120,
        generation_time_ms=500,
        finish_reason="stop",
        is_byok=True,
        provider_responses=[
            {"provider_name": "First", "status": 503, "latency": 40, "is_byok": False},
            {"provider_name": "Prov", "status": 200, "latency": 90, "is_byok": True},
        ],
    )
    page = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/generations/{g.generation_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "$0.0000203" in html  # significant digits, not nine decimals
    assert "120 ms" in html and "10.0 tok/s" in html and "BYOK" in html
    assert "First" in html and "503" in html and "failed over" in html
    assert "<h1" in html and html.count("<h1") == 1


def test_outsiders_get_404_on_every_activity_address(triad: Triad) -> None:
    g = gen(triad.org, None, 1)
    outsider = client_for(triad.outsider)
    base = f"/o/{triad.org.slug}/activity"
    for path in ("/series.json", "/generations/", "/generations.csv", f"/generations/{g.generation_id}/"):
        assert outsider.get(base + path).status_code == 404, path
    # Their own organization's address does not reach our generation either.
    own = f"/o/{triad.outsider_org.slug}/activity/generations/{g.generation_id}/"
    assert outsider.get(own).status_code == 404


def test_the_export_streams_exact_rows_for_the_org_only(triad: Triad, api_key: IssuedKey) -> None:
    gen(triad.org, api_key, 1, cost=20_295, app_title="Cool Chat", hours_ago=2)
    gen(triad.org, api_key, 2, cost=1_500_000_000, http_referer="https://x.example/p", hours_ago=1)
    gen(triad.org, api_key, 3, hours_ago=24 * 40)  # outside 30 days
    gen(triad.outsider_org, None, 4)
    response = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/generations.csv", {"range": "30d"})
    assert response.status_code == 200
    assert response.is_async  # type: ignore[attr-defined]  # an async iterator: ASGI sends it chunk by chunk instead of buffering it
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert [r["generation_id"] for r in rows] == [f"gen-{triad.org.pk}-2", f"gen-{triad.org.pk}-1"]
    assert rows[0]["cost_usd"] == "1.5" and rows[1]["cost_usd"] == "0.000020295"  # exact, not rounded
    assert (rows[0]["app"], rows[1]["app"]) == ("x.example", "Cool Chat")
    assert rows[0]["key"] == "test key"


def test_export_chunks_walk_every_row_once_across_equal_timestamps(triad: Triad) -> None:
    same = timezone.now() - timedelta(minutes=5)
    for n in range(7):
        g = gen(triad.org, None, n)
        Generation.objects.filter(pk=g.pk).update(created_at=same if n < 5 else same - timedelta(minutes=n))
    chunks = list(selectors.generation_export_chunks(organization=triad.org, since=same - timedelta(hours=1), chunk=2))
    assert [len(c) for c in chunks] == [2, 2, 2, 1]
    ids = [row[1] for chunk in chunks for row in chunk]
    assert sorted(ids) == sorted(f"gen-{triad.org.pk}-{n}" for n in range(7)) and len(set(ids)) == 7


def test_key_and_app_filters_offer_what_was_used_and_narrow_the_rows(triad: Triad, api_key: IssuedKey) -> None:
    gen(triad.org, api_key, 1, app_title="Cool Chat")
    gen(triad.org, None, 2, http_referer="https://docs.example.org/a")
    member = client_for(triad.member)
    base = f"/o/{triad.org.slug}/activity/generations/"
    choices = member.get(base).context["choices"]
    assert choices["keys"] == [(str(api_key.api_key.public_id), "test key")]
    assert choices["apps"] == ["Cool Chat", "docs.example.org"]
    by_key = member.get(base, {"key": str(api_key.api_key.public_id)}).context["generations"]
    assert [g.generation_id for g in by_key] == [f"gen-{triad.org.pk}-1"]
    by_app = member.get(base, {"app": "docs.example.org"}).context["generations"]
    assert [g.generation_id for g in by_app] == [f"gen-{triad.org.pk}-2"]
    assert list(member.get(base, {"key": "not-a-uuid"}).context["generations"]) == []
