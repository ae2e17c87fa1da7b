"""The audit log: each change recorded from each source (dashboard, API, CLI, admin) with actor, IP and
before/after; append-only; the page and CSV export for owners and admins only; the retention purge."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings as SettingsWrapper

from accounts.models import User
from organizations.audit import audit_context, audit_purge, audit_record
from organizations.models import ApiKey, AuditEvent, Invitation, Membership, ProviderCredential
from organizations.services import IssuedKey, invitation_accept, invitation_create
from tests.billing.api.support import ApiClient
from tests.support import Triad

HTMX = {"HX-Request": "true"}
SECRET = "sk-proj-audit-test-secret-value-0123456789abcd"


@pytest.fixture(autouse=True)
def _fast_passwords(settings: SettingsWrapper) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _events(triad: Triad, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization=triad.org, action=action).order_by("pk"))


def _only(triad: Triad, action: str) -> AuditEvent:
    events = _events(triad, action)
    assert len(events) == 1, [(e.action, e.source) for e in AuditEvent.objects.all()]
    return events[0]


# --- from the dashboard ----------------------------------------------------------------------------


def test_it_records_key_changes_from_the_dashboard_with_actor_ip_and_before_after(triad: Triad) -> None:
    owner = _login(triad.owner)
    owner.post(f"/o/{triad.org.slug}/keys/", {"name": "ci", "limit_usd": "5", "limit_reset": "daily"}, headers=HTMX)
    key = ApiKey.objects.get(organization=triad.org, name="ci")
    created = _only(triad, "key.created")
    assert (created.source, created.actor, created.actor_label, created.ip) == (
        "dashboard",
        triad.owner,
        "alice@example.com",
        "127.0.0.1",
    )
    assert created.after is not None
    assert created.after["limit_nanos"] == 5_000_000_000 and created.after["label"] == key.label
    assert "hash" not in created.after and key.hash not in str(created.after)

    url = f"/o/{triad.org.slug}/keys/{key.public_id}/limit/"
    owner.post(url, {"limit_usd": "7", "limit_reset": "monthly"}, headers=HTMX)
    updated = _only(triad, "key.updated")
    assert updated.before == {"limit_nanos": 5_000_000_000, "limit_reset": "daily", "include_byok_in_limit": False}
    assert updated.after == {"limit_nanos": 7_000_000_000, "limit_reset": "monthly", "include_byok_in_limit": False}

    owner.post(f"/o/{triad.org.slug}/keys/{key.public_id}/delete/", headers=HTMX)
    deleted = _only(triad, "key.deleted")
    assert deleted.before is not None and deleted.before["name"] == "ci"
    assert deleted.actor == triad.owner


def test_it_records_members_roles_and_invitations(triad: Triad) -> None:
    owner = _login(triad.owner)
    base = f"/o/{triad.org.slug}/organization"
    member = Membership.objects.get(organization=triad.org, user=triad.member)
    owner.post(f"{base}/members/{member.pk}/role/", {"role": "admin"})
    role = _only(triad, "member.role_changed")
    assert (role.target, role.before, role.after, role.source) == (
        "bob@example.com",
        {"role": "member"},
        {"role": "admin"},
        "dashboard",
    )

    owner.post(f"{base}/invite/", {"email": "new@example.com", "role": "member"})
    invited = _only(triad, "invitation.created")
    assert (invited.target, invited.after) == ("new@example.com", {"role": "member"})
    invitation = Invitation.objects.get(organization=triad.org, email="new@example.com")
    owner.post(f"{base}/invitations/{invitation.public_id}/revoke/")
    assert _only(triad, "invitation.revoked").target == "new@example.com"

    owner.post(f"{base}/members/{member.pk}/remove/")
    removed = _only(triad, "member.removed")
    assert (removed.target, removed.before) == ("bob@example.com", {"role": "admin"})


def test_it_records_who_joined_through_an_invitation(triad: Triad) -> None:
    owner = Membership.objects.select_related("organization", "user").get(organization=triad.org, user=triad.owner)
    issued = invitation_create(actor=owner, email="eve@example.com", role="admin")
    eve = User.objects.create_user("eve@example.com", "correct horse battery")
    invitation_accept(token=issued.token, user=eve)
    joined = _only(triad, "member.joined")
    assert (joined.actor, joined.target, joined.after["role"]) == (eve, "eve@example.com", "admin")  # type: ignore[index]


def test_it_records_byok_credentials_without_the_secret(triad: Triad, settings: SettingsWrapper) -> None:
    from cryptography.fernet import Fernet

    settings.BYOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    owner = _login(triad.owner)
    owner.post(f"/o/{triad.org.slug}/byok/add/", {"provider_slug": "openai", "secret": SECRET})
    credential = ProviderCredential.objects.get(organization=triad.org)
    owner.post(f"/o/{triad.org.slug}/byok/{credential.pk}/toggle/")
    owner.post(f"/o/{triad.org.slug}/byok/fallback/", {})
    owner.post(f"/o/{triad.org.slug}/byok/{credential.pk}/delete/")
    actions = [e.action for e in AuditEvent.objects.filter(organization=triad.org, action__startswith="byok.")]
    assert sorted(actions) == ["byok.created", "byok.deleted", "byok.enabled_changed", "byok.fallback_changed"]
    assert _only(triad, "byok.enabled_changed").after == {"is_enabled": False}
    assert _only(triad, "byok.fallback_changed").after == {"byok_allow_platform_fallback": False}
    for event in AuditEvent.objects.filter(organization=triad.org):
        assert SECRET not in f"{event.target}{event.before}{event.after}"


def test_it_records_the_logging_setting(triad: Triad) -> None:
    _login(triad.admin).post(f"/o/{triad.org.slug}/privacy/", {"log_prompts": "on"})
    event = _only(triad, "settings.logging_changed")
    assert (event.before, event.after, event.actor) == ({"log_prompts": False}, {"log_prompts": True}, triad.admin)


# --- from the API, the CLI and the admin ------------------------------------------------------------


def test_it_records_the_management_api_with_the_key_as_actor(triad: Triad, management_key: IssuedKey) -> None:
    client = ApiClient(management_key.key)
    created = client.post("/api/v1/keys", {"name": "from api", "limit": 3})
    assert created.status_code == 201, created.content
    key_hash = created.json()["data"]["hash"]
    assert client.patch(f"/api/v1/keys/{key_hash}", {"disabled": True}).status_code == 200
    assert client.delete(f"/api/v1/keys/{key_hash}").status_code == 200
    events = AuditEvent.objects.filter(organization=triad.org, source="api").order_by("pk")
    assert [e.action for e in events] == ["key.created", "key.updated", "key.deleted"]
    for event in events:
        assert event.actor_label == f"api key mgmt ({management_key.api_key.label})"
        assert event.ip == "127.0.0.1"
    assert events[1].before == {"disabled": False} and events[1].after == {"disabled": True}


def test_it_records_the_cli_as_its_source(triad: Triad) -> None:
    out = io.StringIO()
    call_command("apikey_create", triad.org.slug, "--name", "cron", stdout=out)
    call_command("credits_grant", triad.org.slug, "2.5", "--reason", "goodwill", stdout=out)
    call_command("credits_grant", triad.org.slug, "2.5", "--reason", "goodwill", "--idempotency-key", "g1", stdout=out)
    call_command("credits_grant", triad.org.slug, "2.5", "--reason", "goodwill", "--idempotency-key", "g1", stdout=out)
    key = _only(triad, "key.created")
    assert key.source == "cli" and key.actor is None and key.actor_label.startswith("cli:")
    grants = _events(triad, "credits.granted")
    # The repeated idempotency key granted nothing the second time, so it recorded nothing.
    assert len(grants) == 2
    assert {(g.source, g.target, g.after["amount_nanos"]) for g in grants} == {  # type: ignore[index]
        ("cli", "goodwill", 2_500_000_000)
    }


def test_it_records_admin_changes_and_grants_with_the_operator(triad: Triad, api_key: IssuedKey) -> None:
    ops = User.objects.create_superuser("ops@example.com", "correct horse battery")
    client = _login(ops)
    url = f"/admin/organizations/apikey/{api_key.api_key.pk}/change/"
    r = client.post(url, {"name": "test key", "disabled": "on", "include_byok_in_limit": "", "limit_reset": ""})
    assert r.status_code == 302
    event = _only(triad, "key.updated")
    assert (event.source, event.actor, event.before, event.after) == (
        "admin",
        ops,
        {"disabled": False},
        {"disabled": True},
    )
    member = Membership.objects.get(organization=triad.org, user=triad.member)
    r = client.post(
        f"/admin/organizations/membership/{member.pk}/change/",
        {"user": triad.member.pk, "organization": triad.org.pk, "role": "admin"},
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    role = _only(triad, "member.updated")
    assert (role.source, role.before, role.after) == ("admin", {"role": "member"}, {"role": "admin"})

    credits_url = f"/admin/organizations/organization/{triad.org.pk}/credits/"
    body = {"action": "grant", "amount_usd": "4", "reason": "support ticket 12", "token": str(uuid.uuid4())}
    assert client.post(credits_url, body).status_code == 302
    assert client.post(credits_url, body).status_code == 302  # a double submit grants, and records, once
    grant = _only(triad, "credits.granted")
    assert (grant.source, grant.actor, grant.after["amount_nanos"]) == ("admin", ops, 4_000_000_000)  # type: ignore[index]


def test_it_records_system_changes_without_a_request(triad: Triad) -> None:
    event = audit_record(organization=triad.org, action="settings.test", after={"x": 1})
    assert (event.source, event.actor, event.ip) == ("system", None, None)
    with audit_context(source="cli", label="cli:root"):
        assert audit_record(organization=triad.org, action="settings.test").actor_label == "cli:root"


# --- append-only ---------------------------------------------------------------------------------


def test_it_is_append_only_in_the_model_and_the_database(triad: Triad) -> None:
    event = audit_record(organization=triad.org, action="settings.test", after={"x": 1})
    event.action = "forged"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="retention purge"):
        event.delete()
    # Even a raw queryset update is refused by PostgreSQL's trigger.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="forged")
    event.refresh_from_db()
    assert event.action == "settings.test"


def test_a_deleted_actor_leaves_the_record_and_its_label(triad: Triad) -> None:
    eve = User.objects.create_user("eve@example.com", "correct horse battery")
    event = audit_record(organization=triad.org, action="settings.test", actor=eve)
    eve.delete()
    event.refresh_from_db()
    assert (event.actor, event.actor_label) == (None, "eve@example.com")


# --- the page and the export -------------------------------------------------------------------------


def _seed(triad: Triad) -> None:
    with audit_context(source="api", ip="10.0.0.9"):
        audit_record(organization=triad.org, action="key.created", target="=HYPERLINK(evil)", actor=triad.owner)
    audit_record(organization=triad.org, action="member.removed", target="bob@example.com", actor=triad.admin)
    audit_record(organization=triad.outsider_org, action="key.created", target="other org's key")


def test_owners_and_admins_see_the_page_with_filters(triad: Triad) -> None:
    _seed(triad)
    url = f"/o/{triad.org.slug}/audit/"
    for user in (triad.owner, triad.admin):
        page = _login(user).get(url)
        assert page.status_code == 200
        body = page.content.decode()
        assert "member.removed" in body and "key.created" in body and "other org" not in body
    owner = _login(triad.owner)
    only_keys = owner.get(url, {"category": "key"}).content.decode()
    assert "key.created" in only_keys and "member.removed" not in only_keys
    by_source = owner.get(url, {"source": "api"}).content.decode()
    assert "10.0.0.9" in by_source and "member.removed" not in by_source
    by_actor = owner.get(url, {"actor": "dana@"}).content.decode()
    assert "member.removed" in by_actor and "key.created" not in by_actor
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    assert "No events match." in owner.get(url, {"since": tomorrow}).content.decode()
    today = timezone.now().date().isoformat()
    assert "member.removed" in owner.get(url, {"since": today, "until": today}).content.decode()


def test_members_and_outsiders_get_404(triad: Triad) -> None:
    _seed(triad)
    for user in (triad.member, triad.outsider):
        client = _login(user)
        assert client.get(f"/o/{triad.org.slug}/audit/").status_code == 404
        assert client.get(f"/o/{triad.org.slug}/audit/export.csv").status_code == 404
    assert Client().get(f"/o/{triad.org.slug}/audit/").status_code == 302  # anonymous: to sign-in


def test_it_exports_the_filtered_log_as_streamed_csv(triad: Triad) -> None:
    _seed(triad)
    response = _login(triad.owner).get(f"/o/{triad.org.slug}/audit/export.csv", {"category": "key"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))  # type: ignore[arg-type]
    assert rows[0] == ["time", "action", "target", "actor", "source", "ip", "before", "after"]
    assert len(rows) == 2  # the filter dropped member.removed; the other org's event never appears
    row: dict[str, Any] = dict(zip(rows[0], rows[1], strict=True))
    assert (row["action"], row["actor"], row["source"], row["ip"]) == (
        "key.created",
        "alice@example.com",
        "api",
        "10.0.0.9",
    )
    assert row["target"] == "'=HYPERLINK(evil)"  # a formula is defused for spreadsheets


# --- retention -------------------------------------------------------------------------------------


def test_the_purge_drops_only_events_older_than_the_retention(triad: Triad, settings: SettingsWrapper) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now - timedelta(days=31)):
        old = audit_record(organization=triad.org, action="settings.old")
    with mock.patch("django.utils.timezone.now", return_value=now - timedelta(days=29)):
        recent = audit_record(organization=triad.org, action="settings.recent")
    assert audit_purge(now=now) == 1
    assert not AuditEvent.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    settings.AUDIT_RETENTION_DAYS = 0  # keep forever
    assert audit_purge(now=now + timedelta(days=3650)) == 0


def test_the_purge_runs_as_a_celery_task(triad: Triad, settings: SettingsWrapper) -> None:
    from organizations.tasks import audit_purge_task

    settings.AUDIT_RETENTION_DAYS = 1
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() - timedelta(days=2)):
        audit_record(organization=triad.org, action="settings.old")
    assert audit_purge_task.apply().get() == 1
    assert settings.CELERY_BEAT_SCHEDULE["audit-purge"]["task"] == "organizations.audit_purge"


def test_operators_read_the_log_in_the_admin_but_cannot_change_it(triad: Triad) -> None:
    event = audit_record(organization=triad.org, action="settings.test", target="visible in admin")
    ops = _login(User.objects.create_superuser("ops@example.com", "correct horse battery"))
    assert "visible in admin" in ops.get("/admin/organizations/auditevent/?q=acme").content.decode()
    assert ops.get(f"/admin/organizations/auditevent/{event.pk}/change/").status_code == 200
    assert ops.get("/admin/organizations/auditevent/add/").status_code == 403
    assert ops.post(f"/admin/organizations/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
