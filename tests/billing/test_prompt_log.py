"""Prompt logs at rest: settlement's write, the switch and its key requirement, the generation page,
export and delete-all (owners only), the retention purge with a frozen clock, and key rotation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from asgiref.sync import async_to_sync
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import User
from billing.models import PromptLog
from billing.prompt_log import prompt_log_get, prompt_log_seal
from billing.settlement import usage_events_post
from billing.tasks import prompt_log_purge
from organizations.models import AuditEvent, Membership, Organization
from organizations.services import IssuedKey, OrganizationError, organization_set_log_prompts
from tests.billing.support import event, key_state
from tests.support import Triad

SECRET = "WALRUS-SECRET-PROMPT-7731"


def _record(text: str = SECRET) -> dict[str, Any]:
    return {
        "request": {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": text}]},
        "response": {"choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo {text}"}}]},
    }


def _logging_on(triad: Triad, days: int = 30) -> None:
    actor = Membership.objects.get(organization=triad.org, user=triad.owner)
    organization_set_log_prompts(actor=actor, enabled=True, retention_days=days)
    triad.org.refresh_from_db()


def _settle(api_key: IssuedKey, *, sealed: str, created_at: float | None = None) -> str:
    e = event(key_state(api_key), 0)
    e = dataclasses.replace(e, prompt_log=sealed, created_at=created_at or e.created_at)
    usage_events_post([e])
    return e.generation_id


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the switch ------------------------------------------------------------------------------


def test_logging_cannot_be_switched_on_without_an_encryption_key(triad: Triad, settings: Any) -> None:
    settings.PROMPT_LOG_ENCRYPTION_KEYS = []
    actor = Membership.objects.get(organization=triad.org, user=triad.owner)
    with pytest.raises(OrganizationError, match="PROMPT_LOG_ENCRYPTION_KEYS"):
        organization_set_log_prompts(actor=actor, enabled=True)
    triad.org.refresh_from_db()
    assert not triad.org.log_prompts
    # The page says why, and offers no switch that would fail.
    client = _client(triad.owner)
    client.post("/o/switch/", {"organization": triad.org.slug})
    page = client.get("/settings/").content.decode()
    assert 'id="prompt-log-unavailable"' in page and "PROMPT_LOG_ENCRYPTION_KEYS" in page
    assert 'name="log_prompts"' not in page
    response = client.post(f"/o/{triad.org.slug}/privacy/", {"log_prompts": "on"}, follow=True)
    assert "PROMPT_LOG_ENCRYPTION_KEYS" in response.content.decode()
    triad.org.refresh_from_db()
    assert not triad.org.log_prompts


def test_the_switch_sets_retention_audits_it_and_the_page_says_what_is_kept(triad: Triad) -> None:
    client = _client(triad.owner)
    client.post("/o/switch/", {"organization": triad.org.slug})
    client.post(f"/o/{triad.org.slug}/privacy/", {"log_prompts": "on", "retention_days": "14"})
    triad.org.refresh_from_db()
    assert (triad.org.log_prompts, triad.org.log_prompts_retention_days) == (True, 14)
    audit = AuditEvent.objects.filter(organization=triad.org, action="settings.logging_changed").get()
    assert audit.before == {"log_prompts": False, "log_prompts_retention_days": 30}
    assert audit.after == {"log_prompts": True, "log_prompts_retention_days": 14}
    page = client.get("/settings/").content.decode()
    assert "keeping logs for 14 days" in page
    for words in ("PostgreSQL", "encrypted", "hourly job", "owners and admins", "JSON lines"):
        assert words in page
    # Out of range: refused, nothing changes.
    client.post(f"/o/{triad.org.slug}/privacy/", {"log_prompts": "on", "retention_days": "0"})
    triad.org.refresh_from_db()
    assert triad.org.log_prompts_retention_days == 14


def test_logging_is_off_by_default(triad: Triad) -> None:
    assert Organization._meta.get_field("log_prompts").default is False
    assert not triad.org.log_prompts
    assert triad.org.log_prompts_retention_days == 30


# --- settlement writes it --------------------------------------------------------------------


def test_settlement_stores_the_sealed_record_only_for_an_opted_in_organization(
    triad: Triad, api_key: IssuedKey
) -> None:
    sealed = prompt_log_seal(_record())
    assert SECRET not in sealed
    off = _settle(api_key, sealed=sealed)  # switched off since the request: nothing is kept
    assert not PromptLog.objects.filter(generation_id=off).exists()

    _logging_on(triad)
    on = _settle(api_key, sealed=sealed)
    row = PromptLog.objects.get(generation_id=on)
    assert row.organization_id == triad.org.pk and SECRET not in row.payload
    assert prompt_log_get(organization=triad.org, generation_id=on) == _record()
    assert prompt_log_get(organization=triad.outsider_org, generation_id=on) is None
    # A replayed event changes nothing.
    e = dataclasses.replace(event(key_state(api_key), 0), generation_id=on, prompt_log=sealed)
    usage_events_post([e])
    assert PromptLog.objects.filter(generation_id=on).count() == 1


def test_the_generation_page_shows_it_to_owners_and_admins_only(triad: Triad, api_key: IssuedKey) -> None:
    _logging_on(triad)
    gen_id = _settle(api_key, sealed=prompt_log_seal(_record()))
    path = f"/o/{triad.org.slug}/activity/generations/{gen_id}/"
    for user in (triad.owner, triad.admin):
        page = _client(user).get(path)
        assert page.status_code == 200
        assert SECRET in page.content.decode() and f"echo {SECRET}" in page.content.decode()
    page = _client(triad.member).get(path)
    assert page.status_code == 200 and SECRET not in page.content.decode()
    assert _client(triad.outsider).get(path).status_code == 404


# --- export and delete-all -------------------------------------------------------------------


def _body(response: Any) -> bytes:
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def test_an_owner_exports_json_lines_and_deletes_them_all(triad: Triad, api_key: IssuedKey) -> None:
    _logging_on(triad)
    ids = [_settle(api_key, sealed=prompt_log_seal(_record(f"{SECRET}-{n}"))) for n in range(3)]
    export = f"/o/{triad.org.slug}/prompt-logs.jsonl"
    delete = f"/o/{triad.org.slug}/prompt-logs/delete/"
    assert _client(triad.admin).get(export).status_code == 403
    assert _client(triad.member).get(export).status_code == 403
    assert _client(triad.outsider).get(export).status_code == 404

    response = _client(triad.owner).get(export)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in _body(response).splitlines()]
    assert [line["generation_id"] for line in lines] == ids
    assert lines[2]["request"]["messages"][0]["content"] == f"{SECRET}-2"
    assert AuditEvent.objects.filter(organization=triad.org, action="prompt_log.exported").count() == 1

    for user, status in ((triad.admin, 403), (triad.member, 403), (triad.outsider, 404)):
        assert _client(user).post(delete).status_code == status
    assert PromptLog.objects.filter(organization=triad.org).count() == 3
    assert _client(triad.owner).post(delete).status_code == 302
    assert not PromptLog.objects.filter(organization=triad.org).exists()
    deleted = AuditEvent.objects.get(organization=triad.org, action="prompt_log.deleted_all")
    assert deleted.before == {"count": 3} and deleted.actor == triad.owner


# --- retention and rotation ------------------------------------------------------------------


def test_the_hourly_purge_deletes_what_is_past_retention(
    triad: Triad, api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    _logging_on(triad, days=7)
    frozen = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    sealed = prompt_log_seal(_record())
    old = _settle(api_key, sealed=sealed, created_at=(frozen - timedelta(days=7, seconds=1)).timestamp())
    fresh = _settle(api_key, sealed=sealed, created_at=(frozen - timedelta(days=6, hours=23)).timestamp())
    assert prompt_log_purge() == 1
    assert list(PromptLog.objects.values_list("generation_id", flat=True)) == [fresh]
    assert not PromptLog.objects.filter(generation_id=old).exists()
    # An hour later the clock has moved past the fresh one's retention too.
    monkeypatch.setattr(timezone, "now", lambda: frozen + timedelta(hours=1, seconds=1))
    assert prompt_log_purge() == 1
    assert not PromptLog.objects.exists()


def test_rotation_re_encrypts_with_the_first_key(
    triad: Triad, api_key: IssuedKey, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _logging_on(triad)
    old_key = settings.PROMPT_LOG_ENCRYPTION_KEYS[0]
    gen_id = _settle(api_key, sealed=prompt_log_seal(_record()))
    new_key = Fernet.generate_key().decode()
    settings.PROMPT_LOG_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("prompt_log_rotate")
    assert "Re-encrypted 1 prompt log(s)" in capsys.readouterr().out
    settings.PROMPT_LOG_ENCRYPTION_KEYS = [new_key]  # the old key is gone: still readable
    assert prompt_log_get(organization=triad.org, generation_id=gen_id) == _record()
    settings.PROMPT_LOG_ENCRYPTION_KEYS = [old_key]  # and no longer readable with the old key alone
    assert prompt_log_get(organization=triad.org, generation_id=gen_id) is None
    call_command("prompt_log_rotate", "--generate")
    Fernet(capsys.readouterr().out.strip().encode())  # a usable key
