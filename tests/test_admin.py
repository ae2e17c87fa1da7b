"""The admin console: every model listed, secrets never shown, credits moved only through the ledger."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import Generation, LedgerAccount, LedgerEntry, Posting
from billing.services import credits_grant
from organizations.byok import provider_credential_set
from organizations.models import ApiKey, Invitation, Membership, Organization, ProviderCredential
from organizations.services import IssuedKey, invitation_create
from tests.billing.api.support import make_generation
from tests.support import Triad

BYOK_SECRET = "sk-proj-admin-test-secret-value-0123456789abcd"


@pytest.fixture
def ops(db: None) -> Client:
    user = User.objects.create_superuser("ops@example.com", "correct horse battery")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def populated(triad: Triad, api_key: IssuedKey) -> dict[str, object]:
    owner = Membership.objects.select_related("organization", "user").get(organization=triad.org, user=triad.owner)
    credential = provider_credential_set(actor=owner, provider_slug="openai", secret=BYOK_SECRET)
    invitation = invitation_create(actor=owner, email="new@example.com", role=Membership.Role.MEMBER)
    credits_grant(organization=triad.org, amount_nanos=5_000_000_000, reason="seed")
    make_generation(triad.org, api_key.api_key, "gen-admin")
    return {"credential": credential, "invitation": invitation.invitation, "key": api_key}


MODELS = [
    Organization,
    Membership,
    Invitation,
    ApiKey,
    ProviderCredential,
    LedgerAccount,
    LedgerEntry,
    Posting,
    Generation,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_it_lists_and_opens_every_model(ops: Client, populated: dict[str, object], model: type) -> None:
    meta = model._meta  # type: ignore[attr-defined]
    base = f"/admin/{meta.app_label}/{meta.model_name}/"
    listing = ops.get(base)
    assert listing.status_code == 200
    assert ops.get(base, {"q": "acme"}).status_code == 200  # search works
    obj = model.objects.order_by("pk").first()  # type: ignore[attr-defined]
    assert obj is not None
    assert ops.get(f"{base}{obj.pk}/change/").status_code == 200


def test_it_never_shows_secrets(ops: Client, populated: dict[str, object]) -> None:
    credential = populated["credential"]
    invitation = populated["invitation"]
    key = populated["key"]
    assert isinstance(credential, ProviderCredential) and isinstance(invitation, Invitation)
    assert isinstance(key, IssuedKey)
    token = ProviderCredential.objects.get(pk=credential.pk).secret_encrypted
    pages = [
        ops.get("/admin/organizations/providercredential/").content.decode(),
        ops.get(f"/admin/organizations/providercredential/{credential.pk}/change/").content.decode(),
        ops.get("/admin/organizations/apikey/").content.decode(),
        ops.get(f"/admin/organizations/apikey/{key.api_key.pk}/change/").content.decode(),
        ops.get(f"/admin/organizations/invitation/{invitation.pk}/change/").content.decode(),
    ]
    html = "\n".join(pages)
    assert BYOK_SECRET not in html and token not in html and "...abcd" in html
    assert key.key not in html and key.api_key.hash not in html and key.api_key.label in html
    assert invitation.token_hash not in html


def test_it_keeps_the_ledger_read_only(ops: Client, populated: dict[str, object]) -> None:
    entry = LedgerEntry.objects.first()
    assert entry is not None
    assert ops.get("/admin/billing/ledgerentry/add/").status_code == 403
    assert ops.post(f"/admin/billing/ledgerentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    ops.post(f"/admin/billing/ledgerentry/{entry.pk}/change/", {"memo": "edited"})
    entry.refresh_from_db()
    assert entry.memo == "seed"
    account = LedgerAccount.objects.get(kind=LedgerAccount.Kind.ORG_CREDITS, organization=entry.organization)
    ops.post(f"/admin/billing/ledgeraccount/{account.pk}/change/", {"balance_nanos": "999"})
    account.refresh_from_db()
    assert account.balance_nanos == 5_000_000_000


def test_it_shows_each_organizations_balance_with_links_to_move_credits(
    ops: Client, populated: dict[str, object], triad: Triad
) -> None:
    """Billing extends organizations' admin: the ledger balance in the list, grant/revoke on the page."""
    listing = ops.get("/admin/organizations/organization/").content.decode()
    assert "Balance" in listing and "$5" in listing
    page = ops.get(f"/admin/organizations/organization/{triad.org.pk}/change/").content.decode()
    credits = f"/admin/organizations/organization/{triad.org.pk}/credits/"
    assert f'href="{credits}?action=grant"' in page and f'href="{credits}?action=revoke"' in page


def test_it_grants_and_revokes_through_the_ledger(ops: Client, triad: Triad) -> None:
    url = f"/admin/organizations/organization/{triad.org.pk}/credits/"
    assert ops.get(url).status_code == 200
    token = str(uuid.uuid4())
    body = {"action": "grant", "amount_usd": "12.50", "reason": "Conference voucher", "token": token}
    r = ops.post(url, body)
    assert r.status_code == 302
    assert ops.post(url, body).status_code == 302  # a double submit posts once
    entries = LedgerEntry.objects.filter(organization=triad.org)
    assert entries.count() == 1
    entry = entries.get()
    assert entry.kind == LedgerEntry.Kind.GRANT and entry.memo == "Conference voucher"
    assert entry.created_by is not None and entry.created_by.email == "ops@example.com"
    assert sorted(entry.postings.values_list("amount_nanos", flat=True)) == [-12_500_000_000, 12_500_000_000]
    assert org_balance_nanos(triad.org) == 12_500_000_000

    r = ops.post(
        url, {"action": "revoke", "amount_usd": "2.5", "reason": "Partial clawback", "token": str(uuid.uuid4())}
    )
    assert r.status_code == 302
    assert org_balance_nanos(triad.org) == 10_000_000_000
    assert LedgerEntry.objects.filter(organization=triad.org, kind=LedgerEntry.Kind.REVOKE).count() == 1


def test_it_refuses_bad_credit_input(ops: Client, triad: Triad) -> None:
    url = f"/admin/organizations/organization/{triad.org.pk}/credits/"
    for body in (
        {"action": "grant", "amount_usd": "-5", "reason": "x", "token": str(uuid.uuid4())},
        {"action": "grant", "amount_usd": "5", "reason": "", "token": str(uuid.uuid4())},
        {"action": "steal", "amount_usd": "5", "reason": "x", "token": str(uuid.uuid4())},
    ):
        assert ops.post(url, body).status_code == 200  # the form again, with errors
    assert not LedgerEntry.objects.exists()


def test_it_lets_only_permitted_staff_move_credits(triad: Triad) -> None:
    staff = User.objects.create_user("staff@example.com", "correct horse battery", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_organization"))
    client = Client()
    client.force_login(staff)
    url = f"/admin/organizations/organization/{triad.org.pk}/credits/"
    body = {"action": "grant", "amount_usd": "100", "reason": "me", "token": str(uuid.uuid4())}
    assert client.post(url, body).status_code == 403
    assert client.get(url).status_code == 403
    assert not LedgerEntry.objects.exists()
    assert Client().get(url).status_code == 302  # anonymous: to the admin login


def test_it_disables_a_key_and_tells_the_gateway(ops: Client, api_key: IssuedKey, triad: Triad) -> None:
    from django.core.cache import cache

    cache.set(f"apikey:{api_key.api_key.hash}", "cached", 60)
    url = f"/admin/organizations/apikey/{api_key.api_key.pk}/change/"
    r = ops.post(url, {"name": "test key", "disabled": "on", "include_byok_in_limit": "", "limit_reset": ""})
    assert r.status_code == 302, r.content.decode()[:2000]
    assert ApiKey.objects.get(pk=api_key.api_key.pk).disabled
    assert cache.get(f"apikey:{api_key.api_key.hash}") is None
