"""Operator commands as a script sees them: exit codes, one line on stderr, nothing half-created."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import execute_from_command_line
from django.db import connections
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import LedgerEntry
from organizations.keys import key_hash, key_looks_valid
from organizations.models import ApiKey, Organization
from proxy.models import Endpoint, Model, Provider
from tests.e2e.support import _mock_server, mock_provider
from tests.mockprovider import MockProvider

__all__ = ["_mock_server", "mock_provider"]

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_from_argv closes every connection when done, which would end the test's transaction."""
    monkeypatch.setattr(connections, "close_all", lambda: None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `manage.py <argv>` in-process (same test database) and return (exit code, stdout, stderr)."""
    code = 0
    try:
        execute_from_command_line(["manage.py", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def acme(db: None) -> Organization:
    from organizations.services import organization_create

    owner = User.objects.create_user("owner@example.com", "correct horse battery")
    return organization_create(name="Acme", owner=owner)


def test_it_creates_an_organization_and_prints_its_slug(capsys: pytest.CaptureFixture[str]) -> None:
    User.objects.create_user("ops@example.com", "correct horse battery")
    code, out, err = run(capsys, "org_create", "Acme Labs", "--owner", "OPS@example.com")
    assert (code, out.strip(), err) == (0, "acme-labs", "")
    org = Organization.objects.get(slug="acme-labs")
    assert org.memberships.get().user.email == "ops@example.com"


def test_it_refuses_an_unknown_owner_unless_asked_to_create_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "org_create", "Acme", "--owner", "nobody@example.com")
    assert code == 1
    assert out == ""
    assert err.strip() == "CommandError: no user with email nobody@example.com (use --create-owner)"
    assert not Organization.objects.exists()

    code, out, _ = run(capsys, "org_create", "Acme", "--owner", "nobody@example.com", "--create-owner")
    assert (code, out.strip()) == (0, "acme")
    assert User.objects.get(email="nobody@example.com").has_usable_password() is False


def test_it_grants_credits_in_dollars(capsys: pytest.CaptureFixture[str], acme: Organization) -> None:
    code, out, err = run(capsys, "credits_grant", "acme", "2.50", "--reason", "welcome")
    assert (code, err) == (0, "")
    assert "granted $2.5" in out
    assert org_balance_nanos(acme) == 2_500_000_000
    code, *_ = run(capsys, "credits_grant", str(acme.pk), "1", "--reason", "by id")
    assert code == 0
    code, *_ = run(capsys, "credits_grant", str(acme.public_id), "1", "--reason", "by uuid")
    assert code == 0
    assert org_balance_nanos(acme) == 4_500_000_000


def test_it_makes_a_repeated_grant_with_one_idempotency_key_count_once(
    capsys: pytest.CaptureFixture[str], acme: Organization
) -> None:
    for _ in range(2):
        code, *_ = run(capsys, "credits_grant", "acme", "5", "--reason", "promo", "--idempotency-key", "promo-1")
        assert code == 0
    assert org_balance_nanos(acme) == 5_000_000_000


@pytest.mark.parametrize("amount", ["abc", "0", "-5", "1e-12", "NaN", "Infinity"])
def test_it_rejects_a_bad_amount_with_exit_2(
    capsys: pytest.CaptureFixture[str], acme: Organization, amount: str
) -> None:
    code, out, err = run(capsys, "credits_grant", "acme", amount, "--reason", "x")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "USD" in err
    assert not LedgerEntry.objects.exists()


def test_it_rejects_an_unknown_organization(capsys: pytest.CaptureFixture[str], acme: Organization) -> None:
    code, out, err = run(capsys, "credits_grant", "no-such-org", "5", "--reason", "x")
    assert (code, out) == (1, "")
    assert err.strip() == "CommandError: unknown organization: no-such-org"
    assert not LedgerEntry.objects.exists()
    code, _, err = run(capsys, "apikey_create", "no-such-org", "--name", "k")
    assert code == 1
    assert "unknown organization" in err
    assert not ApiKey.objects.exists()


def test_it_prints_only_the_new_key(capsys: pytest.CaptureFixture[str], acme: Organization) -> None:
    code, out, err = run(capsys, "apikey_create", "acme", "--name", "ci", "--limit", "2.5", "--management")
    assert (code, err) == (0, "")
    key = out.strip()
    assert out == key + "\n"
    assert key_looks_valid(key)
    api_key = ApiKey.objects.get(hash=key_hash(key))
    assert (api_key.organization, api_key.name, api_key.limit_nanos, api_key.is_management) == (
        acme,
        "ci",
        2_500_000_000,
        True,
    )


def test_it_rejects_a_bad_key_limit(capsys: pytest.CaptureFixture[str], acme: Organization) -> None:
    code, out, err = run(capsys, "apikey_create", "acme", "--name", "ci", "--limit", "lots")
    assert (code, out) == (2, "")
    assert "--limit" in err
    assert not ApiKey.objects.exists()


def test_it_requires_the_reason_argument(capsys: pytest.CaptureFixture[str], acme: Organization) -> None:
    code, out, err = run(capsys, "credits_grant", "acme", "5")
    assert out == ""
    assert code == 2
    assert "--reason" in err


def test_it_loads_the_shipped_catalog_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "catalog_load")
    assert (code, err) == (0, "")
    assert "models" in out
    assert Model.objects.count() >= 549
    assert Endpoint.objects.filter(model__slug="meta-llama/llama-3.3-70b-instruct", tag="deepinfra/turbo").exists()


def test_it_reports_a_missing_catalog_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "catalog_load", str(tmp_path / "nope.json"))
    assert (code, out) == (1, "")
    assert err.strip() == f"CommandError: catalog file not found: {tmp_path / 'nope.json'}"


def _demo_keys(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if key_looks_valid(line.strip())]


def test_it_sets_up_the_demo_once_and_prints_the_same_credentials_every_time(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "var" / "demo-credentials.json"
    code, first, err = run(capsys, "demo_setup")
    assert (code, err) == (0, "")
    for _ in range(2):
        code, again, _ = run(capsys, "demo_setup")
        assert (code, again) == (0, first)  # same key, same password, same banner

    org = Organization.objects.get(name="Demo", is_personal=False)
    assert Organization.objects.filter(name="Demo", is_personal=False).count() == 1
    assert org_balance_nanos(org) == 5_000_000_000  # one grant, not three
    (key,) = set(_demo_keys(first))
    assert ApiKey.objects.get(organization=org).hash == key_hash(key)  # exactly one key, the printed one
    assert f"Bearer {key}" in first
    password = re.search(r"with password (\S+)", first)
    assert password is not None
    assert User.objects.get(email="demo@example.com").check_password(password.group(1))
    # The plaintext lives only in the owner-only file, never in the database.
    saved = settings.DEMO_CREDENTIALS_FILE
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["key"] == key


def test_it_rotates_the_demo_key_on_request_or_when_the_saved_one_is_gone(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "demo-credentials.json"
    _, first, _ = run(capsys, "demo_setup")
    code, rotated, _ = run(capsys, "demo_setup", "--rotate")
    assert code == 0
    assert set(_demo_keys(rotated)).isdisjoint(_demo_keys(first))
    assert rotated.split("with password ")[1].split()[0] != first.split("with password ")[1].split()[0]

    settings.DEMO_CREDENTIALS_FILE.unlink()  # lost file: a new key replaces the old one, still just one
    _, after_loss, _ = run(capsys, "demo_setup")
    (key,) = set(_demo_keys(after_loss))
    assert key not in rotated
    org = Organization.objects.get(name="Demo", is_personal=False)
    assert list(ApiKey.objects.filter(organization=org).values_list("hash", flat=True)) == [key_hash(key)]
    assert org_balance_nanos(org) == 5_000_000_000


# --- provider_add: a self-hosted OpenAI-compatible server ------------------------------------------


@pytest.fixture
def paying_key(db: None) -> str:
    from billing.services import credits_grant
    from organizations.services import api_key_create, organization_create

    owner = User.objects.create_user("selfhost@example.com", "correct horse battery")
    org = organization_create(name="Self Host", owner=owner)
    credits_grant(organization=org, amount_nanos=5_000_000_000, reason="test")
    return api_key_create(organization=org, name="k", created_by=owner).key


def _listed_ids(client: Client) -> set[str]:
    from proxy.selectors import catalog_cache_clear

    catalog_cache_clear()
    return {m["id"] for m in client.get("/api/v1/models").json()["data"]}


@pytest.mark.django_db(transaction=True)
def test_it_adds_a_self_hosted_server_by_discovering_its_models_and_routes_to_it(
    capsys: pytest.CaptureFixture[str],
    mock_provider: MockProvider,
    paying_key: str,
    client: Client,
    settings: Settings,
) -> None:
    settings.PROVIDER_ENV = {"LOCAL_VLLM_API_KEY": "sk-local"}  # the key a server started with --api-key wants
    code, out, err = run(
        capsys, "provider_add", "--slug", "local-vllm", "--base-url", mock_provider.openai_base_url,
        "--price-in", "0.5", "--price-out", "1.5",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "local-vllm/mock-ok" in out and "mock-org/mock-llama-8b-instruct" in out
    assert {"local-vllm/mock-ok", "mock-org/mock-llama-8b-instruct"} <= _listed_ids(client)
    llama = Endpoint.objects.get(model__slug="mock-org/mock-llama-8b-instruct", tag="local-vllm")
    assert (llama.upstream_model, llama.context_length) == ("mock-org/Mock-Llama-8B-Instruct", 4096)
    assert (llama.prompt_nanos_per_mtok, llama.completion_nanos_per_mtok) == (500_000_000, 1_500_000_000)

    status, body = asyncio.run(_complete(paying_key, "mock-org/mock-llama-8b-instruct"))
    assert status == 200, body
    assert body["provider"] == "local-vllm"
    (sent,) = [r for r in mock_provider.requests if r.format == "openai"]
    assert (sent.body["model"], sent.headers["authorization"]) == ("mock-org/Mock-Llama-8B-Instruct", "Bearer sk-local")

    # The next `make run` reloads the catalog file, which does not list this provider: it stays.
    code, *_ = run(capsys, "catalog_load")
    assert code == 0
    assert {"local-vllm/mock-ok", "mock-org/mock-llama-8b-instruct"} <= _listed_ids(client)
    assert Endpoint.objects.filter(tag="local-vllm", is_enabled=True, retired=False).count() == 2


async def _complete(key: str, model: str) -> tuple[int, dict[str, Any]]:
    from tests.proxy.gateway.support import asgi_client

    async with asgi_client(key) as gateway:
        response = await gateway.post(
            "/api/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
        )
        status, body = response.status_code, response.json()
    # This module's autouse fixture turns connections.close_all into a no-op: close the worker thread's own.
    await sync_to_async(lambda: [c.close() for c in connections.all(initialized_only=True)])()
    return status, body


def test_it_adds_named_models_without_asking_the_server_and_refuses_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "provider_add", "--slug", "my-ollama", "--base-url", "http://127.0.0.1:9/v1",
        "--model", "llama3.2:latest", "--name", "Ollama",
    )  # fmt: skip
    assert (code, err) == (0, "")
    model = Model.objects.get(slug="my-ollama/llama3.2-latest")  # ':' would read as a variant suffix
    assert model.endpoints.get().upstream_model == "llama3.2:latest"
    assert Provider.objects.get(slug="my-ollama").requires_api_key is False

    code, out, err = run(capsys, "provider_add", "--slug", "dead", "--base-url", "http://127.0.0.1:9/v1")
    assert (code, out) == (1, "")
    assert "cannot list models" in err and "--model" in err
    assert not Provider.objects.filter(slug="dead").exists()

    code, _, err = run(
        capsys, "provider_add", "--slug", "x", "--base-url", "http://h/v1", "--model", "m", "--price-in", "-1"
    )
    assert code == 2 and "--price-in" in err

    run(capsys, "catalog_load")
    code, _, err = run(capsys, "provider_add", "--slug", "deepinfra", "--base-url", "http://h/v1", "--model", "m")
    assert code == 1 and "DEEPINFRA_BASE_URL" in err
