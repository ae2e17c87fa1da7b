"""`GET /api/v1/activity`: management keys only, OpenRouter's row shape, the key's organization only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from analytics.rollup import rollup_run
from organizations.services import IssuedKey, api_key_create
from tests.analytics.support import settled
from tests.support import Triad

pytestmark = pytest.mark.django_db


def today() -> datetime:
    return timezone.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def get(key: IssuedKey | None, **params: str) -> tuple[int, dict[str, object]]:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key.key}"} if key else {}
    response = Client().get("/api/v1/activity", params, **headers)  # type: ignore[arg-type]
    return response.status_code, response.json()


@pytest.fixture
def seeded(triad: Triad, api_key: IssuedKey) -> Triad:
    day1 = today() - timedelta(days=1)
    settled(triad.org, 1, day1 + timedelta(hours=3), key=api_key, cost_nanos=1_500_000_000, tokens_reasoning=4)
    settled(triad.org, 2, day1 + timedelta(hours=9), key=api_key, cost_nanos=500_000_000)
    settled(triad.org, 3, day1 + timedelta(hours=9), model="b/two", endpoint_tag="other/turbo", provider_name="Other")
    settled(
        triad.org, 4, day1 - timedelta(days=2), is_byok=True, cost_nanos=0, list_cost_nanos=12_000_000, tokens_prompt=50
    )
    settled(triad.org, 5, today() + timedelta(hours=1))  # today is not a completed day
    settled(triad.org, 6, today() - timedelta(days=31, hours=1))  # older than 30 days
    outsider_key = api_key_create(organization=triad.outsider_org, name="theirs", created_by=triad.outsider)
    settled(triad.outsider_org, 7, day1 + timedelta(hours=3), key=outsider_key, model="their/model")
    return triad


def test_daily_rows_per_model_and_endpoint_in_openrouter_shape(seeded: Triad, management_key: IssuedKey) -> None:
    status, body = get(management_key)
    assert status == 200
    rows = body["data"]
    assert isinstance(rows, list)
    day1 = (today() - timedelta(days=1)).strftime("%Y-%m-%d")
    day3 = (today() - timedelta(days=3)).strftime("%Y-%m-%d")
    assert rows[0] == {
        "date": day1,
        "model": "a/one",
        "model_permaslug": "a/one",
        "endpoint_id": "prov",
        "provider_name": "Prov",
        "usage": 2.0,
        "byok_usage_inference": 0.0,
        "requests": 2,
        "prompt_tokens": 20,
        "completion_tokens": 10,
        "reasoning_tokens": 4,
    }
    assert [(r["date"], r["model"], r["endpoint_id"], r["requests"]) for r in rows[1:]] == [
        (day1, "b/two", "other/turbo", 1),
        (day3, "a/one", "prov", 1),
    ]
    assert rows[2]["byok_usage_inference"] == 0.012 and rows[2]["prompt_tokens"] == 50
    assert all(r["model"] != "their/model" for r in rows)  # the outsider's usage never appears


def test_the_same_rows_after_the_rollup(seeded: Triad, management_key: IssuedKey) -> None:
    before = get(management_key)
    rollup_run(now=timezone.now() + timedelta(days=1))
    assert get(management_key) == before


def test_date_and_key_and_user_filters(seeded: Triad, management_key: IssuedKey, api_key: IssuedKey) -> None:
    day3 = (today() - timedelta(days=3)).strftime("%Y-%m-%d")
    _, body = get(management_key, date=day3)
    assert [(r["date"], r["requests"]) for r in body["data"]] == [(day3, 1)]  # type: ignore[union-attr,index]
    _, by_key = get(management_key, api_key_hash=api_key.api_key.hash)
    assert [(r["model"], r["requests"]) for r in by_key["data"]] == [("a/one", 2)]  # type: ignore[union-attr,index]
    _, by_user = get(management_key, user_id=f"user_{seeded.owner.public_id.hex}")
    assert [r["requests"] for r in by_user["data"]] == [2]  # type: ignore[union-attr,index]
    # Another organization's key hash matches nothing here rather than leaking its rows.
    theirs = api_key_create(organization=seeded.outsider_org, name="x", created_by=seeded.outsider)
    assert get(management_key, api_key_hash=theirs.api_key.hash)[1] == {"data": []}


def test_bad_dates_are_400(management_key: IssuedKey) -> None:
    for bad in ("yesterday", "2020-01-01", today().strftime("%Y-%m-%d")):
        status, body = get(management_key, date=bad)
        assert status == 400, bad
        assert "date" in body["error"]["message"]  # type: ignore[index]


def test_only_management_keys(seeded: Triad, api_key: IssuedKey) -> None:
    assert get(api_key)[0] == 403
    assert get(None)[0] == 401
    status, body = get(api_key_create(organization=seeded.outsider_org, name="m", is_management=True))
    assert status == 200 and all(r["model"] == "their/model" for r in body["data"])  # type: ignore[union-attr,index]
    assert len(body["data"]) == 1  # type: ignore[arg-type]
