"""GET /key, /auth/key, /credits and /generation."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing.ledger import Leg, ledger_post
from billing.models import LedgerAccount, LedgerEntry
from billing.services import credits_grant, credits_revoke
from organizations.models import ApiKey, Organization
from organizations.services import IssuedKey, api_key_create
from tests.billing.api.support import ApiClient, make_generation
from tests.support import Triad

Kind = LedgerAccount.Kind


def settle_usage(org: Organization, generation_id: str, nanos: int) -> None:
    """What the settlement worker posts for one generation."""
    ledger_post(
        idempotency_key=f"usage:{generation_id}",
        kind=LedgerEntry.Kind.USAGE,
        organization=org,
        legs=[Leg(Kind.ORG_CREDITS, -nanos, org), Leg(Kind.USAGE_REVENUE, nanos)],
    )


def test_it_describes_the_current_key(api_key: IssuedKey, triad: Triad) -> None:
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(limit_nanos=10_000_000_000, limit_reset="daily")
    make_generation(triad.org, api_key.api_key, "gen-a", cost_nanos=2_500_000_000)
    make_generation(triad.org, api_key.api_key, "gen-b", cost_nanos=0, list_cost_nanos=700_000_000, is_byok=True)
    r = ApiClient(api_key.key).get("/api/v1/key")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["label"] == api_key.api_key.label
    assert data["limit"] == 10.0 and data["limit_remaining"] == 7.5 and data["limit_reset"] == "daily"
    assert data["include_byok_in_limit"] is False
    assert data["usage"] == 2.5 and data["usage_daily"] == 2.5 and data["usage_weekly"] == 2.5
    assert data["byok_usage"] == 0.7 and data["byok_usage_monthly"] == 0.7
    assert data["is_free_tier"] is True
    assert data["is_management_key"] is False and data["is_provisioning_key"] is False
    assert data["expires_at"] is None
    assert data["creator_user_id"] == f"user_{triad.owner.public_id.hex}"
    assert data["rate_limit"]["interval"] == "10s" and data["rate_limit"]["requests"] == -1
    assert set(data["free_model_daily_requests"]) == {"used", "limit", "remaining"}
    assert api_key.key not in r.content.decode()


def test_it_counts_byok_against_the_limit_when_asked(api_key: IssuedKey, triad: Triad) -> None:
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(limit_nanos=1_000_000_000, include_byok_in_limit=True)
    make_generation(
        triad.org, api_key.api_key, "gen-b", cost_nanos=100_000_000, list_cost_nanos=400_000_000, is_byok=True
    )
    data = ApiClient(api_key.key).get("/api/v1/key").json()["data"]
    assert data["limit_remaining"] == 0.5  # 1.00 - 0.10 charged - 0.40 BYOK


def test_it_serves_the_legacy_auth_key_path(management_key: IssuedKey, triad: Triad) -> None:
    r = ApiClient(management_key.key).get("/api/v1/auth/key")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["is_management_key"] is True and data["is_provisioning_key"] is True
    assert data["limit"] is None and data["limit_remaining"] is None


def test_it_says_a_buyer_is_not_free_tier(api_key: IssuedKey, triad: Triad) -> None:
    ledger_post(
        idempotency_key="topup:t1",
        kind=LedgerEntry.Kind.TOPUP,
        organization=triad.org,
        legs=[Leg(Kind.ORG_CREDITS, 10_000_000_000, triad.org), Leg(Kind.PAYMENT_CLEARING, -10_000_000_000)],
    )
    assert ApiClient(api_key.key).get("/api/v1/key").json()["data"]["is_free_tier"] is False


def test_it_needs_a_valid_key_for_the_key_endpoint(triad: Triad) -> None:
    assert ApiClient(None).get("/api/v1/key").status_code == 401
    r = ApiClient("sk-or-v1-" + "f" * 64).get("/api/v1/key")
    assert r.status_code == 401 and r.json()["error"]["message"] == "User not found."


def test_it_refuses_an_expired_key(triad: Triad) -> None:
    issued = api_key_create(organization=triad.org, name="old", expires_at=timezone.now() + timedelta(seconds=1))
    ApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = ApiClient(issued.key).get("/api/v1/key")
    assert r.status_code == 401


def test_it_reports_credits_and_usage(api_key: IssuedKey, management_key: IssuedKey, triad: Triad) -> None:
    credits_grant(organization=triad.org, amount_nanos=20_000_000_000, reason="welcome")
    credits_revoke(organization=triad.org, amount_nanos=5_000_000_000, reason="oops")
    settle_usage(triad.org, "gen-1", 1_250_000_000)
    credits_grant(organization=triad.outsider_org, amount_nanos=99_000_000_000, reason="not ours")
    for key in (management_key.key, api_key.key):  # inference keys are accepted too (documented)
        r = ApiClient(key).get("/api/v1/credits")
        assert r.status_code == 200
        assert r.json() == {"data": {"total_credits": 15.0, "total_usage": 1.25}}


def test_it_needs_a_key_for_credits(triad: Triad) -> None:
    r = ApiClient(None).get("/api/v1/credits")
    assert r.status_code == 401 and r.json()["error"]["message"] == "No auth credentials found"


def test_it_returns_a_settled_generation(api_key: IssuedKey, triad: Triad) -> None:
    make_generation(
        triad.org,
        api_key.api_key,
        "gen-1744845790-VDqUk3HsqsMOdoNex7FH",
        upstream_id="chatcmpl-123",
        tokens_prompt=11,
        tokens_completion=22,
        tokens_reasoning=5,
        tokens_cached=3,
        cost_nanos=1_500_000,
        latency_ms=1250,
        ttft_ms=300,
        generation_time_ms=1200,
        finish_reason="stop",
        native_finish_reason="end_turn",
        streamed=True,
        http_referer="https://myapp.example",
        app_title="My App",
        external_user="user-123",
        provider_responses=[{"provider_name": "OpenAI", "status": 200, "latency": 1200, "is_byok": False}],
    )
    r = ApiClient(api_key.key).get("/api/v1/generation", id="gen-1744845790-VDqUk3HsqsMOdoNex7FH")
    assert r.status_code == 200
    data = r.json()["data"]
    assert data["id"] == "gen-1744845790-VDqUk3HsqsMOdoNex7FH" and data["upstream_id"] == "chatcmpl-123"
    assert data["total_cost"] == 0.0015 and data["usage"] == 0.0015
    assert data["is_byok"] is False and data["upstream_inference_cost"] is None
    assert data["model"] == "openai/gpt-4o-mini" and data["provider_name"] == "OpenAI"
    assert data["tokens_prompt"] == 11 and data["native_tokens_completion"] == 22
    assert data["native_tokens_reasoning"] == 5 and data["native_tokens_cached"] == 3
    assert data["latency"] == 1250 and data["generation_time"] == 1200 and data["time_to_first_token"] == 300
    assert data["finish_reason"] == "stop" and data["native_finish_reason"] == "end_turn"
    assert data["streamed"] is True and data["cancelled"] is False
    assert data["http_referer"] == "https://myapp.example" and data["app_title"] == "My App"
    assert data["external_user"] == "user-123" and data["api_type"] == "completions"
    assert data["provider_responses"][0]["status"] == 200
    assert data["created_at"].endswith("+00:00")


def test_it_shows_byok_upstream_cost(api_key: IssuedKey, triad: Triad) -> None:
    make_generation(triad.org, api_key.api_key, "gen-byok", is_byok=True, cost_nanos=0, list_cost_nanos=2_000_000)
    data = ApiClient(api_key.key).get("/api/v1/generation", id="gen-byok").json()["data"]
    assert data["is_byok"] is True and data["total_cost"] == 0 and data["upstream_inference_cost"] == 0.002


def test_it_hides_other_organizations_generations(api_key: IssuedKey, triad: Triad) -> None:
    make_generation(triad.outsider_org, None, "gen-theirs")
    r = ApiClient(api_key.key).get("/api/v1/generation", id="gen-theirs")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404 and "gen-theirs" in r.json()["error"]["message"]


def test_it_answers_404_until_a_generation_is_settled(api_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(api_key.key)
    assert client.get("/api/v1/generation", id="gen-not-yet").status_code == 404
    make_generation(triad.org, api_key.api_key, "gen-not-yet")
    assert client.get("/api/v1/generation", id="gen-not-yet").status_code == 200


def test_it_needs_an_id_and_a_key_for_generations(api_key: IssuedKey, triad: Triad) -> None:
    r = ApiClient(api_key.key).get("/api/v1/generation")
    assert r.status_code == 400 and "id" in r.json()["error"]["message"]
    assert ApiClient(None).get("/api/v1/generation", id="gen-x").status_code == 401
