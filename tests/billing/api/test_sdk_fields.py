"""The fields OpenRouter's strict SDKs require on /key, /keys and /generation, with truthful values."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from billing.api.selectors import KeyUsage
from billing.api.serializers import key_budgets
from organizations.models import ApiKey
from organizations.services import IssuedKey, api_key_create
from tests.billing.api.support import ApiClient, make_generation
from tests.support import Triad


def test_key_without_a_limit_has_no_budget(api_key: IssuedKey, triad: Triad) -> None:
    data = ApiClient(api_key.key).get("/api/v1/key").json()["data"]
    assert data["budgets"] == [] and data["effective_budget"] is None
    assert data["allowed_data_regions"] == ["global", "europe", "us"]
    assert data["workspace_id"] == str(triad.org.public_id) == data["organization_id"]


def test_key_limit_is_its_budget(api_key: IssuedKey, triad: Triad) -> None:
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(limit_nanos=10_000_000_000, limit_reset="monthly")
    make_generation(triad.org, api_key.api_key, "gen-a", cost_nanos=2_500_000_000)
    data = ApiClient(api_key.key).get("/api/v1/key").json()["data"]
    budget = data["effective_budget"]
    assert data["budgets"] == [budget]
    assert budget["scope"] == "key_limit" and budget["budget_id"] is None and budget["guardrail_id"] is None
    assert budget["limit_usd"] == 10.0 and budget["spend_usd"] == 2.5 and budget["remaining_usd"] == 7.5
    assert budget["reset_interval"] == "monthly" and budget["include_byok"] is False
    resets = datetime.fromisoformat(budget["resets_at"])
    now = timezone.now()
    assert resets > now and resets.day == 1 and (resets.hour, resets.minute) == (0, 0)


def test_budget_resets_when_the_gate_starts_a_new_window() -> None:
    key = ApiKey(limit_nanos=1_000_000_000, limit_reset="weekly", include_byok_in_limit=True)
    wednesday = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    usage = KeyUsage(weekly=400_000_000, byok_weekly=100_000_000)
    (weekly,) = key_budgets(key, usage, now=wednesday)
    assert weekly["resets_at"] == "2026-12-07T00:00:00+00:00"  # the next Monday
    assert weekly["spend_usd"] == 0.5 and weekly["remaining_usd"] == 0.5 and weekly["include_byok"] is True
    key.limit_reset = "daily"
    assert key_budgets(key, usage, now=wednesday)[0]["resets_at"] == "2026-12-03T00:00:00+00:00"
    key.limit_reset = "monthly"
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert key_budgets(key, usage, now=december)[0]["resets_at"] == "2027-01-01T00:00:00+00:00"
    key.limit_reset = None
    assert key_budgets(key, usage, now=december)[0]["resets_at"] is None


def test_keys_list_has_workspace_external_user_and_last_use(management_key: IssuedKey, triad: Triad) -> None:
    used = api_key_create(organization=triad.org, name="used", created_by=triad.owner)
    when = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    ApiKey.objects.filter(pk=used.api_key.pk).update(last_used_at=when)
    api_key_create(organization=triad.outsider_org, name="theirs", created_by=triad.outsider)
    rows = ApiClient(management_key.key).get("/api/v1/keys").json()["data"]
    assert [r["name"] for r in rows] == ["used"]  # the other organization's key is not listed
    (row,) = rows
    assert row["workspace_id"] == str(triad.org.public_id)
    assert row["external_user"] is None
    assert row["last_used_at"] == "2026-11-30T12:00:00+00:00"
    detail = ApiClient(management_key.key).get(f"/api/v1/keys/{row['hash']}").json()["data"]
    assert detail["last_used_at"] == row["last_used_at"] and detail["workspace_id"] == row["workspace_id"]


def test_generation_has_region_fetches_tier_engine_and_workspace(api_key: IssuedKey, triad: Triad) -> None:
    make_generation(
        triad.org,
        api_key.api_key,
        "gen-sdk",
        provider_responses=[
            {"provider_name": "OpenAI", "status": 503, "latency": 10},
            {"provider_name": "OpenAI", "status": 200, "latency": 90, "routed_service_tier": "flex"},
        ],
    )
    data = ApiClient(api_key.key).get("/api/v1/generation", id="gen-sdk").json()["data"]
    assert data["data_region"] == "global"
    assert data["num_fetches"] is None and data["web_search_engine"] is None
    assert data["service_tier"] == "flex"
    assert data["workspace_id"] == str(triad.org.public_id)
    assert data["origin"] == ""
    make_generation(triad.org, api_key.api_key, "gen-plain")
    assert ApiClient(api_key.key).get("/api/v1/generation", id="gen-plain").json()["data"]["service_tier"] is None
