"""The first hour (issue 16): .env, the embedded default's settings, console mail, the in-process scheduler."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from common.env import load_env_file
from openrouter_site.mail import ConsoleEmailBackend
from openrouter_site.scheduler import Scheduler, with_scheduler

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "a long and unusual passphrase"


# --- .env ------------------------------------------------------------------------------------------


def test_the_env_file_fills_only_what_the_environment_leaves_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# comment\n"
        "FH_PORT=8100\n"
        "export FH_QUOTED='two words'\n"
        "FH_FROM=Local Site <noreply@localhost>\n"  # `source .env` would read '<' as a redirection
        "FH_SET_ALREADY=from-file\n"
        "FH_EMPTY=\n"
        "not a variable line\n"
    )
    for name in ("FH_PORT", "FH_QUOTED", "FH_FROM", "FH_EMPTY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FH_SET_ALREADY", "from-environment")

    loaded = load_env_file(env)

    assert loaded == ["FH_PORT", "FH_QUOTED", "FH_FROM"]
    assert (os.environ["FH_PORT"], os.environ["FH_QUOTED"]) == ("8100", "two words")
    assert os.environ["FH_FROM"] == "Local Site <noreply@localhost>"
    assert os.environ["FH_SET_ALREADY"] == "from-environment"
    assert "FH_EMPTY" not in os.environ
    assert load_env_file(tmp_path / "missing") == []
    for name in loaded:
        monkeypatch.delenv(name)


def _settings_in_subprocess(env: dict[str, str], *names: str) -> dict[str, Any]:
    """Settings as a fresh process computes them from this environment (settings read env at import)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_"))}
    for name in ("HOST", "PORT", "SITE_URL", "ACCOUNT_EMAIL_VERIFICATION", "IN_PROCESS_SCHEDULER"):
        base.pop(name, None)
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: str(getattr(settings, n)) for n in {list(names)!r}}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "openrouter_site.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_embedded_default_and_production_settings_differ_where_the_issue_says() -> None:
    names = ("SITE_URL", "ACCOUNT_EMAIL_VERIFICATION", "IN_PROCESS_SCHEDULER", "ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION")
    embedded = _settings_in_subprocess({"PORT": "8100"}, *names)
    assert embedded == {
        "SITE_URL": "http://127.0.0.1:8100",  # the banner and emails follow the real port
        "ACCOUNT_EMAIL_VERIFICATION": "optional",
        "IN_PROCESS_SCHEDULER": "True",
        "ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION": "True",
    }
    production = _settings_in_subprocess(
        {"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x", "REDIS_URL": "redis://127.0.0.1:6379/0"}, *names
    )
    assert production["ACCOUNT_EMAIL_VERIFICATION"] == "mandatory"
    assert production["IN_PROCESS_SCHEDULER"] == "False"  # Celery beat runs the schedule there


# --- Mail and verification ---------------------------------------------------------------------------


def test_console_mail_frames_the_message_and_calls_out_its_links(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.mail import EmailMessage

    message = EmailMessage(
        "Confirm", "Hello\nTo confirm, open http://127.0.0.1:8100/accounts/confirm-email/abc/\n", to=["a@b.c"]
    )
    ConsoleEmailBackend().send_messages([message])
    out = capsys.readouterr().out
    assert "EMAIL to a@b.c: Confirm" in out
    assert ">>> Open this link: http://127.0.0.1:8100/accounts/confirm-email/abc/" in out
    assert "Content-Transfer-Encoding" not in out  # no MIME wall


@pytest.mark.django_db
def test_confirming_the_email_signs_the_user_in_and_names_the_site(client: Client, settings: Settings) -> None:
    settings.SITE_NAME = "Acme Gateway"
    settings.SITE_URL = "http://127.0.0.1:8100"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(
        "/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response["Location"] == "/accounts/confirm-email/"  # mandatory under the test settings

    body = mail.outbox[0].body
    assert "Acme Gateway" in body and "http://127.0.0.1:8100" in body
    assert "example.com" not in body.replace("new@example.com", "")
    page = client.get("/accounts/confirm-email/").content.decode()
    assert "spam" not in page and "contact us" not in page.lower()
    assert "Acme Gateway" in page  # the site name in the layout, not a hard-coded one
    settings.EMAIL_BACKEND = "openrouter_site.mail.ConsoleEmailBackend"  # the embedded default's
    assert "terminal where" in client.get("/accounts/confirm-email/").content.decode()  # where mail really goes

    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", body)
    assert link is not None
    confirmed = client.post(link.group(1))
    assert confirmed.status_code == 302
    assert not confirmed["Location"].startswith("/accounts/login/")
    assert client.get("/keys/").status_code == 302
    assert "/o/" in client.get("/keys/")["Location"]  # signed in: sent to their organization's keys
    assert User.objects.get(email="new@example.com").emailaddress_set.get().verified


@pytest.mark.django_db
def test_optional_verification_signs_the_user_in_at_once(client: Client, settings: Settings) -> None:
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    response = client.post(
        "/accounts/signup/", {"email": "quick@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/keys/"
    assert len(mail.outbox) == 1  # the link is still sent (and printed), just not required


# --- The in-process scheduler ------------------------------------------------------------------------

SCHEDULE = {"fast": {"task": "t.fast", "schedule": 1.0}, "slow": {"task": "t.slow", "schedule": 60.0}}


def test_the_scheduler_runs_what_is_due_survives_a_failure_and_remembers_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "scheduler-state.json"
    ran: list[str] = []

    def run_task(name: str) -> None:
        ran.append(name)
        if name == "t.fast":
            raise RuntimeError("an unreachable RPC")  # logged; the other entry still runs

    scheduler = Scheduler(SCHEDULE, state_file=state, run_task=run_task)
    assert scheduler.run_due() <= 1.0
    assert ran == ["t.fast", "t.slow"]
    scheduler.run_due()
    assert ran == ["t.fast", "t.slow"]  # nothing due yet
    assert set(json.loads(state.read_text())) == {"fast", "slow"}

    # A restart: the slow entry is not rerun at once, its last run came from disk.
    restarted = Scheduler(SCHEDULE, state_file=state, run_task=run_task)
    assert restarted.last_run == scheduler.last_run
    ran.clear()
    restarted.run_due()
    assert "t.slow" not in ran

    state.write_text("not json")  # a damaged file: everything is simply due
    ran.clear()
    Scheduler(SCHEDULE, state_file=state, run_task=run_task).run_due()
    assert ran == ["t.fast", "t.slow"]


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_runs_every_real_beat_task(settings: Settings, tmp_path: Path) -> None:
    """Each name in CELERY_BEAT_SCHEDULE is a registered task the scheduler can call (real services)."""
    failures: list[str] = []
    scheduler = Scheduler(settings.CELERY_BEAT_SCHEDULE, state_file=tmp_path / "s.json")
    scheduler._app.loader.import_default_modules()

    def run_task(name: str) -> object:
        try:
            return scheduler._call_task(name)
        except Exception as exc:
            failures.append(f"{name}: {exc!r}")
            raise

    scheduler._run_task = run_task
    scheduler.run_due()
    assert failures == []
    assert set(scheduler.last_run) == set(settings.CELERY_BEAT_SCHEDULE)


def test_the_scheduler_starts_and_stops_with_the_server(settings: Settings, tmp_path: Path) -> None:
    settings.IN_PROCESS_SCHEDULER = True
    ran: list[str] = []
    scheduler = Scheduler({"tick": {"task": "t.tick", "schedule": 0.05}}, state_file=None, run_task=ran.append)
    inner_saw: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            inner_saw.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def lifespan() -> None:
        queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        await queue.put({"type": "lifespan.startup"})
        sent: list[dict[str, str]] = []

        async def send(message: dict[str, str]) -> None:
            sent.append(message)
            if message["type"] == "lifespan.startup.complete":
                await asyncio.sleep(0.3)  # the server runs for a moment
                await queue.put({"type": "lifespan.shutdown"})

        await with_scheduler(inner, scheduler)({"type": "lifespan"}, queue.get, send)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(lifespan())
    assert inner_saw == ["lifespan.startup", "lifespan.shutdown"]
    assert len(ran) >= 2  # ticked while serving
    count = len(ran)
    asyncio.run(asyncio.sleep(0.2))
    assert len(ran) == count  # and stopped with the server

    settings.IN_PROCESS_SCHEDULER = False
    assert with_scheduler(inner) is inner  # where beat runs there is nothing to wrap


# --- A quiet console -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_pages_static_files_and_404s_leave_the_console_quiet_under_asgi(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging
    import warnings

    import httpx
    from asgiref.sync import sync_to_async
    from django.db import connections

    # Django's ASGI handler gives each request its own thread; close each one's connection when it ends.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)

    from openrouter_site.asgi import application

    css = (REPO / "static" / "css" / "site.css").read_bytes()

    async def browse() -> list[tuple[int, bytes]]:
        transport = httpx.ASGITransport(app=application)  # type: ignore[arg-type]
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                got = await client.get("/static/css/site.css")
                head = await client.head("/static/css/site.css")
                missing = await client.get("/no-such-page/")
                login = await client.get("/accounts/login/")
        finally:
            await sync_to_async(connections.close_all)()  # the page views ran on asgiref's worker thread
        return [(r.status_code, r.content) for r in (got, head, missing, login)]

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        (got, head, missing, login) = asyncio.run(browse())

    assert got == (200, css)  # streamed in chunks off the event loop, byte for byte
    assert head == (200, b"")
    assert missing[0] == 404 and login[0] == 200
    assert [str(w.message) for w in caught if "iterator" in str(w.message)] == []
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == []  # no "Not Found:" line


# --- make run's server ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_serve_listens_where_settings_say_and_starts_the_scheduler_with_it(tmp_path: Path) -> None:
    """`manage.py serve` (the end of `make run`): HOST/PORT from the environment (or .env), the banner
    says the real address, the periodic tasks start with the server, ACCESS_LOG turns the access log on."""
    import httpx

    from tests.e2e.support import _test_database_url
    from tests.mockprovider import free_port

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PORT": str(port),
        "IN_PROCESS_SCHEDULER": "true",
        "ACCESS_LOG": "true",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(0.5)
        text = log.read_text()
        assert f"Serving http://127.0.0.1:{port}/" in text
        assert "in-process scheduler started" in text and "settle-usage" in text
        assert '"GET /healthz HTTP/1.1" 200' in text
    finally:
        process.terminate()
        process.wait(15)
