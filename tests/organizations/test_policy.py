"""The data policy page: owners and admins edit it (audited), members read it, outsiders get 404."""

from __future__ import annotations

import pytest
from django.test import Client

from organizations.models import ApiKey, AuditEvent, Membership
from organizations.policy import api_key_set_allowed_models, organization_set_data_policy
from organizations.services import IssuedKey, OrganizationError, api_key_create
from tests.support import Triad

POLICY = {
    "deny_data_collection": "on",
    "zdr_only": "",
    "allowed_providers": "Anthropic, openai\nanthropic",
    "blocked_providers": "deepinfra",
    "allowed_models": "anthropic/*\nopenai/gpt-4o",
}


def _url(triad: Triad, suffix: str = "") -> str:
    return f"/o/{triad.org.slug}/policy/{suffix}"


def test_an_owner_edits_the_policy_and_the_change_is_audited(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    page = client.get(_url(triad))
    assert page.status_code == 200
    assert b'name="allowed_models"' in page.content

    response = client.post(_url(triad, "update/"), POLICY)

    assert response.status_code == 302
    triad.org.refresh_from_db()
    assert triad.org.policy_deny_data_collection is True
    assert triad.org.policy_zdr_only is False
    assert triad.org.policy_allowed_providers == ["anthropic", "openai"]  # normalised and de-duplicated
    assert triad.org.policy_blocked_providers == ["deepinfra"]
    assert triad.org.policy_allowed_models == ["anthropic/*", "openai/gpt-4o"]
    event = AuditEvent.objects.get(organization=triad.org, action="settings.data_policy_changed")
    assert event.actor == triad.owner
    assert event.source == "dashboard"
    assert event.before == {
        "deny_data_collection": False,
        "allowed_providers": [],
        "blocked_providers": [],
        "allowed_models": [],
    }
    assert event.after is not None and event.after["allowed_models"] == ["anthropic/*", "openai/gpt-4o"]


def test_saving_the_same_policy_again_records_nothing(client: Client, triad: Triad) -> None:
    client.force_login(triad.admin)
    client.post(_url(triad, "update/"), POLICY)
    client.post(_url(triad, "update/"), POLICY)
    assert AuditEvent.objects.filter(organization=triad.org, action="settings.data_policy_changed").count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_models", "gpt-4o", "not a valid model id"),
        ("allowed_providers", "open ai", "not a valid provider slug"),
        ("blocked_providers", "openai", "both allowed and blocked"),
    ],
)
def test_invalid_entries_are_refused_and_nothing_changes(
    client: Client, triad: Triad, field: str, value: str, message: str
) -> None:
    client.force_login(triad.owner)
    response = client.post(_url(triad, "update/"), {**POLICY, field: value})
    assert response.status_code == 400
    assert message in response.content.decode()
    triad.org.refresh_from_db()
    assert triad.org.policy_allowed_models == []
    assert not AuditEvent.objects.filter(action="settings.data_policy_changed").exists()


def test_a_member_reads_the_policy_but_cannot_change_it(client: Client, triad: Triad) -> None:
    owner = Membership.objects.get(organization=triad.org, user=triad.owner)
    organization_set_data_policy(
        actor=owner,
        deny_data_collection=False,
        zdr_only=True,
        allowed_providers=[],
        blocked_providers=["deepinfra"],
        allowed_models=[],
    )
    client.force_login(triad.member)

    page = client.get(_url(triad))
    assert page.status_code == 200
    assert b'name="allowed_models"' not in page.content  # read-only
    assert b"<code>deepinfra</code>" in page.content

    assert client.post(_url(triad, "update/"), POLICY).status_code == 403
    triad.org.refresh_from_db()
    assert triad.org.policy_allowed_models == []
    member = Membership.objects.get(organization=triad.org, user=triad.member)
    with pytest.raises(OrganizationError):
        organization_set_data_policy(
            actor=member,
            deny_data_collection=True,
            zdr_only=True,
            allowed_providers=[],
            blocked_providers=[],
            allowed_models=[],
        )


def test_an_owner_restricts_a_keys_models(client: Client, triad: Triad, api_key: IssuedKey) -> None:
    client.force_login(triad.owner)
    url = _url(triad, f"keys/{api_key.api_key.public_id}/")

    assert client.post(url, {"allowed_models": "mistralai/*, Anthropic/Claude-3.5-Sonnet"}).status_code == 302

    api_key.api_key.refresh_from_db()
    assert api_key.api_key.allowed_models == ["mistralai/*", "anthropic/claude-3.5-sonnet"]
    event = AuditEvent.objects.get(organization=triad.org, action="key.allowed_models_changed")
    assert event.before == {"allowed_models": []}
    assert event.after == {"allowed_models": ["mistralai/*", "anthropic/claude-3.5-sonnet"]}
    # The keys page shows the key's restriction and the organization's policy to every member.
    client.force_login(triad.member)
    keys_page = client.get(f"/o/{triad.org.slug}/keys/").content.decode()
    assert "Models: mistralai/*, anthropic/claude-3.5-sonnet" in keys_page
    assert "Data policy" in keys_page


def test_a_member_cannot_restrict_a_keys_models(client: Client, triad: Triad, api_key: IssuedKey) -> None:
    client.force_login(triad.member)
    url = _url(triad, f"keys/{api_key.api_key.public_id}/")
    assert client.post(url, {"allowed_models": "mistralai/*"}).status_code == 403
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.allowed_models == []


def test_a_key_of_another_organization_is_404(client: Client, triad: Triad) -> None:
    other = api_key_create(organization=triad.outsider_org, name="theirs", created_by=triad.outsider)
    client.force_login(triad.owner)
    response = client.post(_url(triad, f"keys/{other.api_key.public_id}/"), {"allowed_models": "x/*"})
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=other.api_key.pk).allowed_models == []
    owner = Membership.objects.get(organization=triad.org, user=triad.owner)
    with pytest.raises(OrganizationError):
        api_key_set_allowed_models(actor=owner, api_key=other.api_key, allowed_models=["x/*"])


@pytest.mark.parametrize(
    ("method", "suffix", "data"),
    [("get", "", {}), ("post", "update/", POLICY), ("post", "keys/{key}/", {"allowed_models": "x/*"})],
)
def test_an_outsider_gets_404_and_changes_nothing(
    client: Client, triad: Triad, api_key: IssuedKey, method: str, suffix: str, data: dict[str, str]
) -> None:
    client.force_login(triad.outsider)
    response = getattr(client, method)(_url(triad, suffix.format(key=api_key.api_key.public_id)), data)
    assert response.status_code == 404
    triad.org.refresh_from_db()
    assert triad.org.policy_allowed_models == []
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.allowed_models == []
    changes = ("settings.data_policy_changed", "key.allowed_models_changed")
    assert not AuditEvent.objects.filter(organization=triad.org, action__in=changes).exists()
