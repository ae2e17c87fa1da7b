"""Configuration has one home: settings.py reads the environment, `.env.example` lists what it reads,
and nothing else in the apps reads the environment (so no request reads it at run time)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPS = ("common", "accounts", "organizations", "billing", "proxy", "analytics", "openrouter_site")
# Entry points that only choose the settings module before Django starts.
ENTRY_POINTS = {"openrouter_site/asgi.py", "openrouter_site/wsgi.py", "openrouter_site/celery.py", "common/env.py"}
PROVIDER_VARIABLE = re.compile(r"^[A-Z0-9_]+_(API_KEY|API_KEYS|BASE_URL)$")


def _settings_reads() -> set[str]:
    source = (REPO / "openrouter_site" / "settings.py").read_text()
    return set(re.findall(r"env_(?:str|bool|int|list|float)\(\s*\"([A-Z0-9_]+)\"", source))


def _example_names() -> set[str]:
    lines = (REPO / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z0-9_]+=", line)}


def test_every_variable_settings_reads_is_listed_in_env_example() -> None:
    missing = _settings_reads() - _example_names()
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_lists_nothing_that_nobody_reads() -> None:
    unread = {n for n in _example_names() - _settings_reads() if not PROVIDER_VARIABLE.match(n)}
    assert not unread, f".env.example lists variables settings.py never reads: {sorted(unread)}"


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for app in APPS:
        for path in (REPO / app).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            if rel == "openrouter_site/settings.py" or rel in ENTRY_POINTS or "/migrations/" in rel:
                continue
            text = path.read_text()
            if re.search(r"os\.environ|os\.getenv|from common\.env import|getattr\(settings,", text):
                offenders.append(rel)
    assert not offenders, f"read configuration through django.conf.settings instead: {offenders}"


def test_https_1_makes_check_deploy_clean() -> None:
    """Production hardening is switched on from the environment alone (no settings file to edit)."""
    import os
    import secrets
    import subprocess
    import sys

    env = {
        **os.environ,
        "HTTPS": "1",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "gateway.example.com",
    }
    argv = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout

    insecure = {**env, "HTTPS": "0"}
    done = subprocess.run(argv, cwd=REPO, env=insecure, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "SECURE_SSL_REDIRECT" in done.stdout + done.stderr
