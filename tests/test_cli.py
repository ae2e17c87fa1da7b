"""Operator commands as a script sees them: exit codes, one line on stderr, nothing half-created."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import execute_from_command_line

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import LedgerEntry
from organizations.keys import key_hash, key_looks_valid
from organizations.models import ApiKey, Organization
from proxy.models import Endpoint, Model

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_test_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_from_argv closes every connection when done, which would end the test's transaction."""
    from django.db import connections

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


def test_it_sets_up_the_demo_once_and_prints_a_fresh_key_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    code, first, err = run(capsys, "demo_setup")
    assert (code, err) == (0, "")
    code, second, _ = run(capsys, "demo_setup")
    assert code == 0

    org = Organization.objects.get(name="Demo", is_personal=False)
    assert org_balance_nanos(org) == 5_000_000_000  # one grant, not two
    keys = [line.strip() for line in (first + second).splitlines() if key_looks_valid(line.strip())]
    assert len(set(keys)) == 2
    assert ApiKey.objects.filter(organization=org).count() == 2
    assert "curl" in first
    assert f"Bearer {keys[0]}" in first
    assert Decimal(org_balance_nanos(org)) / 10**9 == 5
