from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from billing.models import Generation
from organizations.models import ApiKey
from organizations.services import IssuedKey, api_key_create
from tests.billing.api.support import ApiClient, make_generation
from tests.support import Triad

KEY_FIELDS = {
    "hash", "name", "label", "disabled", "limit", "limit_remaining", "limit_reset", "include_byok_in_limit",
    "usage", "usage_daily", "usage_weekly", "usage_monthly", "byok_usage", "byok_usage_daily",
    "byok_usage_weekly", "byok_usage_monthly", "created_at", "updated_at", "expires_at", "creator_user_id",
    "workspace_id", "external_user", "last_used_at",
}  # fmt: skip


def test_it_requires_credentials(triad: Triad) -> None:
    r = ApiClient(None).get("/api/v1/keys")
    assert r.status_code == 401
    assert r.json() == {"error": {"code": 401, "message": "No auth credentials found", "metadata": None}}


def test_it_rejects_an_unknown_key(triad: Triad) -> None:
    r = ApiClient("sk-or-v1-" + "0" * 64).get("/api/v1/keys")
    assert r.status_code == 401
    assert r.json()["error"]["message"] == "User not found."


def test_it_refuses_inference_keys(api_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(api_key.key)
    for response in (client.get("/api/v1/keys"), client.post("/api/v1/keys", {"name": "x"})):
        assert response.status_code == 403
        assert response.json()["error"] == {
            "code": 403,
            "message": "Only management keys can perform this operation",
            "metadata": None,
        }
    assert ApiKey.objects.filter(organization=triad.org).count() == 1


def test_it_creates_a_key_and_shows_the_plaintext_once(management_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(management_key.key)
    r = client.post(
        "/api/v1/keys", {"name": "ci bot", "limit": 12.5, "limit_reset": "weekly", "include_byok_in_limit": True}
    )
    assert r.status_code == 201
    body = r.json()
    assert body["key"].startswith("sk-or-v1-") and len(body["key"]) == 73
    data = body["data"]
    assert set(data) == KEY_FIELDS
    created = ApiKey.objects.get(hash=data["hash"])
    assert created.organization == triad.org and not created.is_management
    assert created.limit_nanos == 12_500_000_000
    assert data["limit"] == 12.5 and data["limit_remaining"] == 12.5 and data["limit_reset"] == "weekly"
    assert data["include_byok_in_limit"] is True and data["disabled"] is False
    assert data["creator_user_id"] == f"user_{triad.owner.public_id.hex}"
    assert data["label"] == created.label and body["key"] not in str(data)
    # The plaintext is never shown again.
    again = client.get(f"/api/v1/keys/{data['hash']}").json()
    assert "key" not in again and body["key"] not in str(again)


def test_it_attributes_a_key_to_the_named_member(management_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(management_key.key)
    ref = f"user_{triad.member.public_id.hex}"
    r = client.post("/api/v1/keys", {"name": "bob's", "creator_user_id": ref})
    assert r.status_code == 201
    assert ApiKey.objects.get(hash=r.json()["data"]["hash"]).created_by == triad.member


def test_it_refuses_a_creator_from_another_organization(management_key: IssuedKey, triad: Triad) -> None:
    r = ApiClient(management_key.key).post(
        "/api/v1/keys", {"name": "x", "creator_user_id": f"user_{triad.outsider.public_id.hex}"}
    )
    assert r.status_code == 400
    assert "creator_user_id" in r.json()["error"]["message"]
    assert not ApiKey.objects.filter(name="x").exists()


def test_it_refuses_a_negative_limit_and_writes_nothing(management_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(management_key.key)
    before = ApiKey.objects.count()
    r = client.post("/api/v1/keys", {"name": "neg", "limit": -1})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == 400
    assert r.json()["error"]["message"].startswith("limit: must be zero or more")
    assert ApiKey.objects.count() == before


def test_it_refuses_bad_input(management_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(management_key.key)
    bad_bodies = [
        {},
        {"name": ""},
        {"name": "x", "limit": "ten"},
        {"name": "x", "limit": True},
        {"name": "x", "limit": 0.0000000001},
        {"name": "x", "limit_reset": "hourly"},
        {"name": "x", "expires_at": (timezone.now() - timedelta(days=1)).isoformat()},
    ]
    for body in bad_bodies:
        r = client.post("/api/v1/keys", body)
        assert r.status_code == 400, body
        assert r.json()["error"]["message"], body
    assert ApiKey.objects.count() == 1


def test_it_accepts_an_expiry_and_a_zero_limit(management_key: IssuedKey, triad: Triad) -> None:
    expires = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    r = ApiClient(management_key.key).post("/api/v1/keys", {"name": "x", "limit": 0, "expires_at": expires.isoformat()})
    assert r.status_code == 201
    key = ApiKey.objects.get(hash=r.json()["data"]["hash"])
    assert key.expires_at == expires and key.limit_nanos == 0
    assert r.json()["data"]["expires_at"] == expires.isoformat()


def test_it_lists_the_organizations_inference_keys(management_key: IssuedKey, api_key: IssuedKey, triad: Triad) -> None:
    disabled = api_key_create(organization=triad.org, name="old", created_by=triad.owner)
    ApiKey.objects.filter(pk=disabled.api_key.pk).update(disabled=True)
    api_key_create(organization=triad.outsider_org, name="theirs", created_by=triad.outsider)
    client = ApiClient(management_key.key)

    hashes = [k["hash"] for k in client.get("/api/v1/keys").json()["data"]]
    assert hashes == [api_key.api_key.hash]  # no disabled key, no management key, no other org's key

    with_disabled = client.get("/api/v1/keys", include_disabled="true").json()["data"]
    assert {k["hash"] for k in with_disabled} == {api_key.api_key.hash, disabled.api_key.hash}


def test_it_pages_the_list_by_offset(management_key: IssuedKey, triad: Triad) -> None:
    for i in range(102):
        api_key_create(organization=triad.org, name=f"k{i}")
    client = ApiClient(management_key.key)
    first = client.get("/api/v1/keys").json()["data"]
    second = client.get("/api/v1/keys", offset=100).json()["data"]
    assert len(first) == 100 and len(second) == 2
    assert not {k["hash"] for k in first} & {k["hash"] for k in second}
    assert client.get("/api/v1/keys", offset="-1").status_code == 400


def test_it_reports_settled_usage_per_key(management_key: IssuedKey, api_key: IssuedKey, triad: Triad) -> None:
    make_generation(triad.org, api_key.api_key, "gen-1", cost_nanos=2_000_000_000)
    make_generation(
        triad.org, api_key.api_key, "gen-2", cost_nanos=50_000_000, list_cost_nanos=1_000_000_000, is_byok=True
    )
    make_generation(
        triad.org, api_key.api_key, "gen-old", cost_nanos=3_000_000_000, created_at=timezone.now() - timedelta(days=40)
    )
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(limit_nanos=10_000_000_000, limit_reset="monthly")
    data = ApiClient(management_key.key).get(f"/api/v1/keys/{api_key.api_key.hash}").json()["data"]
    assert data["usage"] == 5.05 and data["usage_daily"] == 2.05 and data["usage_monthly"] == 2.05
    assert data["byok_usage"] == 1.0 and data["byok_usage_daily"] == 1.0
    assert data["limit"] == 10.0 and data["limit_remaining"] == 7.95  # this month's credits usage only


def test_it_gets_a_key_by_hash_and_hides_other_organizations_keys(management_key: IssuedKey, triad: Triad) -> None:
    theirs = api_key_create(organization=triad.outsider_org, name="theirs", created_by=triad.outsider)
    client = ApiClient(management_key.key)
    path = f"/api/v1/keys/{theirs.api_key.hash}"
    for response in (
        client.get(path),
        client.patch(path, {"disabled": True, "limit": 1}),
        client.delete(path),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == 404
    theirs.api_key.refresh_from_db()
    assert not theirs.api_key.disabled and theirs.api_key.limit_nanos is None
    # The management key itself is not managed through /keys either.
    assert client.get(f"/api/v1/keys/{management_key.api_key.hash}").status_code == 404


def test_it_updates_only_what_was_sent(management_key: IssuedKey, api_key: IssuedKey, triad: Triad) -> None:
    client = ApiClient(management_key.key)
    path = f"/api/v1/keys/{api_key.api_key.hash}"
    r = client.patch(path, {"limit": 20, "limit_reset": "daily"})
    assert r.status_code == 200
    assert r.json()["data"]["limit"] == 20.0 and r.json()["data"]["limit_reset"] == "daily"

    r = client.patch(path, {"name": "renamed", "disabled": True, "include_byok_in_limit": True})
    data = r.json()["data"]
    assert data["name"] == "renamed" and data["disabled"] is True and data["include_byok_in_limit"] is True
    assert data["limit"] == 20.0 and data["limit_reset"] == "daily"  # untouched

    r = client.patch(path, {"limit": None, "limit_reset": None})
    assert r.json()["data"]["limit"] is None and r.json()["data"]["limit_remaining"] is None
    key = ApiKey.objects.get(pk=api_key.api_key.pk)
    assert key.limit_nanos is None and key.limit_reset is None and key.name == "renamed" and key.disabled


def test_it_refuses_a_negative_limit_on_update_and_changes_nothing(
    management_key: IssuedKey, api_key: IssuedKey, triad: Triad
) -> None:
    ApiKey.objects.filter(pk=api_key.api_key.pk).update(limit_nanos=5_000_000_000)
    r = ApiClient(management_key.key).patch(f"/api/v1/keys/{api_key.api_key.hash}", {"name": "new", "limit": -5})
    assert r.status_code == 400
    key = ApiKey.objects.get(pk=api_key.api_key.pk)
    assert key.limit_nanos == 5_000_000_000 and key.name == "test key"


def test_it_disables_a_key_so_it_stops_authenticating(
    management_key: IssuedKey, api_key: IssuedKey, triad: Triad
) -> None:
    ApiClient(management_key.key).patch(f"/api/v1/keys/{api_key.api_key.hash}", {"disabled": True})
    r = ApiClient(api_key.key).get("/api/v1/key")
    assert r.status_code == 401


def test_it_deletes_a_key(management_key: IssuedKey, api_key: IssuedKey, triad: Triad) -> None:
    make_generation(triad.org, api_key.api_key, "gen-kept")
    client = ApiClient(management_key.key)
    r = client.delete(f"/api/v1/keys/{api_key.api_key.hash}")
    assert r.status_code == 200 and r.json() == {"deleted": True}
    assert not ApiKey.objects.filter(pk=api_key.api_key.pk).exists()
    assert Generation.objects.get(generation_id="gen-kept").api_key is None  # history survives the key
    assert client.get(f"/api/v1/keys/{api_key.api_key.hash}").status_code == 404
    assert ApiClient(api_key.key).get("/api/v1/key").status_code == 401


def test_it_answers_json_404_for_a_malformed_hash(management_key: IssuedKey, triad: Triad) -> None:
    r = ApiClient(management_key.key).get("/api/v1/keys/not-a-hash")
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
