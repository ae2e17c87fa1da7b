"""Prompt logging through the in-process gateway, with the storage scan (issue 13, item 1).

Off (the default): a distinctive string sent in a chat request, streamed and not, is found nowhere
afterwards: not in any PostgreSQL table (a `pg_dump --data-only` of the test database, bytea as hex
included), not in any Redis value (every key by its type, streams included; Celery's broker is this
same Redis database), not in the captured logs. On: the same holds for plaintext, while the record is
stored encrypted and shown decrypted to the organization's owners and admins only.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import uuid
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client

from accounts.models import User
from billing.models import PromptLog
from billing.prompt_log import prompt_log_get
from organizations.models import Membership
from organizations.services import organization_create, organization_set_log_prompts
from tests.e2e.support import World, generation
from tests.mockprovider import DEFAULT_PIECES, MockProvider
from tests.proxy.gateway.support import PATH, asgi_client, stream, streamed_text

ANSWER = "".join(DEFAULT_PIECES)  # what the mock provider answers, streamed or not


def _probe() -> str:
    return f"ZEBRA-PROBE-{uuid.uuid4().hex}"


def _traffic(key: str, probe: str) -> list[str]:
    """One non-streaming and one streaming chat completion carrying the probe; their generation ids."""

    async def main() -> list[str]:
        async with asgi_client(key) as client:
            messages = [{"role": "user", "content": f"Repeat after me: {probe}"}]
            plain = await client.post(PATH, json={"model": "mock-openai/ok", "messages": messages})
            assert plain.status_code == 200, plain.text
            assert plain.json()["choices"][0]["message"]["content"] == ANSWER
            res, events = await stream(client, {"model": "mock-anthropic/ok", "messages": messages})
            assert res.status_code == 200, res.text
            assert streamed_text(events) == ANSWER
            return [plain.json()["id"], events.data()[-1]["id"]]

    return asyncio.run(main())


def _redis_values() -> bytes:
    """Every key and every value of the Redis database, by type (streams entry by entry)."""
    client: Any = redis.Redis.from_url(settings.REDIS_URL)  # bytes replies (no decode_responses)
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            for field, value in client.hgetall(key).items():
                out += [field, value]
        elif kind == b"list":
            out += client.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(client.smembers(key))
        elif kind == b"zset":
            out += client.zrange(key, 0, -1)
        elif kind == b"stream":
            for entry_id, fields in client.xrange(key):
                out.append(entry_id)
                for field, value in fields.items():
                    out += [field, value]
        else:
            pytest.fail(f"unexpected Redis type {kind!r} for {key!r}: extend the scan")
    client.close()
    return b"\n".join(out)


def _postgres_dump() -> str:
    """The data of every table of the test database, as pg_dump writes it (bytea columns as hex)."""
    db = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "-d", db["NAME"], "-U", db["USER"] or "postgres"]
    if db["HOST"]:
        command += ["-h", db["HOST"], "-p", str(db["PORT"] or 5432)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    assert "COPY public.billing_generation" in done.stdout  # the dump really holds the tables
    return done.stdout


def _hits(probe: str, *, redis_blob: bytes, dump: str, logs: str) -> list[str]:
    hex_probe = probe.encode().hex()  # how a bytea column would hold it
    places = []
    if probe.encode() in redis_blob:
        places.append("redis")
    if probe in dump or hex_probe in dump:
        places.append("postgresql")
    if probe in logs:
        places.append("logs")
    return places


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_with_logging_off_the_probe_is_stored_nowhere(
    live: World, mock_provider: MockProvider, all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    assert not live.org.log_prompts  # off by default
    probe = _probe()
    ids = _traffic(live.key.key, probe)
    queued = _redis_values()  # the usage events wait in the Redis stream, unsettled
    assert ids[0].encode() in queued, "the scan must see the queued usage events"
    assert b'"prompt_log":""' in queued  # nothing sealed when off
    gens = [generation(i) for i in ids]  # settlement runs
    assert [g.streamed for g in gens] == [False, True]
    assert not PromptLog.objects.exists()
    out, err = capfd.readouterr()
    logs = all_logs.text + out + err
    assert _hits(probe, redis_blob=queued + _redis_values(), dump=_postgres_dump(), logs=logs) == []
    # The response text is nowhere either (it is not a distinctive string, but no table should hold it).
    assert ANSWER not in _postgres_dump()


def test_with_logging_on_bodies_are_stored_encrypted_and_shown_to_managers_only(
    live: World, mock_provider: MockProvider, all_logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    owner = Membership.objects.get(organization=live.org, user=live.owner)
    organization_set_log_prompts(actor=owner, enabled=True, retention_days=7)
    probe = _probe()
    ids = _traffic(live.key.key, probe)
    queued = _redis_values()
    assert ids[0].encode() in queued
    assert queued.count(b'"prompt_log":"gAAAAA') == 2  # each usage event carries a Fernet token, not text
    [generation(i) for i in ids]
    out, err = capfd.readouterr()
    dump = _postgres_dump()
    assert "COPY public.billing_promptlog" in dump
    # Stored, but nowhere in plaintext: not in Redis (before or after settlement), PostgreSQL or logs.
    assert _hits(probe, redis_blob=queued + _redis_values(), dump=dump, logs=all_logs.text + out + err) == []

    plain, streamed = (prompt_log_get(organization=live.org, generation_id=i) for i in ids)
    assert plain is not None and streamed is not None
    for record in (plain, streamed):
        assert record["request"]["messages"][0]["content"] == f"Repeat after me: {probe}"
    assert plain["response"]["choices"][0]["message"]["content"] == ANSWER
    assert streamed["response"]["choices"][0]["message"] == {"role": "assistant", "content": ANSWER}

    page = f"/o/{live.org.slug}/activity/generations/{ids[1]}/"
    admin = User.objects.create_user("e2e-admin@example.com", "correct horse battery")
    member = User.objects.create_user("e2e-member@example.com", "correct horse battery")
    Membership.objects.create(organization=live.org, user=admin, role=Membership.Role.ADMIN)
    Membership.objects.create(organization=live.org, user=member, role=Membership.Role.MEMBER)
    outsider = User.objects.create_user("e2e-outsider@example.com", "correct horse battery")
    organization_create(name="Elsewhere", owner=outsider)
    for user in (live.owner, admin):
        body = _page(user, page)
        assert body.status_code == 200
        assert probe in body.content.decode() and ANSWER in body.content.decode()
    body = _page(member, page)
    assert body.status_code == 200
    assert probe not in body.content.decode() and 'id="prompt-log"' not in body.content.decode()
    assert _page(outsider, page).status_code == 404


def test_without_an_encryption_key_nothing_is_sealed(live: World, mock_provider: MockProvider, settings: Any) -> None:
    """Logging on, but the operator removed the key: the gateway keeps nothing rather than plaintext."""
    type(live.org).objects.filter(pk=live.org.pk).update(log_prompts=True)
    settings.PROMPT_LOG_ENCRYPTION_KEYS = []
    probe = _probe()
    ids = _traffic(live.key.key, probe)
    assert probe.encode() not in _redis_values()
    [generation(i) for i in ids]
    assert not PromptLog.objects.exists()


def _page(user: User, path: str) -> httpx.Response | Any:
    client = Client()
    client.force_login(user)
    return client.get(path)
