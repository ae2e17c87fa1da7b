"""The Keys page: list, create (shown once), rename, limit, disable, delete; htmx swaps and full pages."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from organizations.models import ApiKey
from organizations.services import IssuedKey
from tests.support import Triad

HTMX = {"HX-Request": "true"}


@pytest.fixture
def owner_client(client: Client, triad: Triad) -> Client:
    client.force_login(triad.owner)
    return client


def _keys_url(triad: Triad) -> str:
    return f"/o/{triad.org.slug}/keys/"


def _key_url(triad: Triad, api_key: ApiKey, action: str) -> str:
    return f"/o/{triad.org.slug}/keys/{api_key.public_id}/{action}/"


def test_it_lists_the_organizations_keys_with_label_creator_and_badges(
    owner_client: Client, triad: Triad, api_key: IssuedKey, management_key: IssuedKey
) -> None:
    page = owner_client.get(_keys_url(triad)).content.decode()
    assert api_key.api_key.label in page
    assert "test key" in page
    assert "Management" in page
    assert triad.owner.email in page
    assert api_key.key not in page
    assert management_key.key not in page


def test_it_creates_a_key_with_an_exact_limit_and_reset(owner_client: Client, triad: Triad) -> None:
    data = {"name": "  batch jobs ", "limit_reset": "weekly"}
    response = owner_client.post(_keys_url(triad), {**data, "limit_usd": "12.3456789012"}, headers=HTMX)
    assert response.status_code == 200
    assert b"Ensure that there are no more than 9 decimal places." in response.content
    assert not ApiKey.objects.filter(organization=triad.org).exists()

    response = owner_client.post(_keys_url(triad), {**data, "limit_usd": "12.000000001"}, headers=HTMX)
    api_key = ApiKey.objects.get(organization=triad.org)
    assert api_key.name == "batch jobs"
    assert api_key.limit_nanos == 12_000_000_001
    assert api_key.limit_reset == "weekly"
    assert not api_key.is_management
    assert re.search(rb"sk-or-v1-[0-9a-f]{64}", response.content)


def test_it_creates_a_management_key_without_htmx_and_shows_it_in_the_full_page(
    owner_client: Client, triad: Triad
) -> None:
    response = owner_client.post(_keys_url(triad), {"name": "ops", "is_management": "on", "limit_reset": "never"})
    assert response.status_code == 200
    assert b"<html" in response.content
    api_key = ApiKey.objects.get(organization=triad.org)
    assert api_key.is_management
    assert api_key.limit_nanos is None
    assert api_key.limit_reset is None
    match = re.search(rb"sk-or-v1-[0-9a-f]{64}", response.content)
    assert match is not None
    assert api_key.hash != match.group(0).decode()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "", "limit_reset": "never"}, "This field is required."),
        ({"name": "   ", "limit_reset": "never"}, "This field is required."),
        ({"name": "k", "limit_usd": "-1", "limit_reset": "never"}, "greater than or equal to 0"),
        ({"name": "k", "limit_usd": "ten", "limit_reset": "never"}, "Enter a number."),
        ({"name": "k", "limit_usd": "", "limit_reset": "monthly"}, "A reset period needs a limit."),
        ({"name": "k", "limit_usd": "5", "limit_reset": "yearly"}, "Select a valid choice."),
        ({"name": "x" * 121, "limit_reset": "never"}, "at most 120 characters"),
    ],
)
def test_it_re_renders_the_create_form_with_errors_and_writes_nothing(
    owner_client: Client, triad: Triad, data: dict[str, str], error: str
) -> None:
    for headers in (HTMX, {}):
        response = owner_client.post(_keys_url(triad), data, headers=headers)
        assert response.status_code == 200
        assert error in response.content.decode()
        assert not re.search(rb"sk-or-v1-[0-9a-f]{64}", response.content)
    assert not ApiKey.objects.filter(organization=triad.org).exists()


def test_it_renames_a_key_through_an_htmx_row_swap(owner_client: Client, triad: Triad, api_key: IssuedKey) -> None:
    url = _key_url(triad, api_key.api_key, "rename")
    editor = owner_client.get(url, headers=HTMX)
    assert editor.status_code == 200
    assert editor.content.decode().lstrip().startswith("<tr")
    assert 'value="test key"' in editor.content.decode()

    bad = owner_client.post(url, {"name": "  "}, headers=HTMX)
    assert b"This field is required." in bad.content
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.name == "test key"

    row = owner_client.post(url, {"name": "renamed"}, headers=HTMX)
    assert row.content.decode().lstrip().startswith("<tr")
    assert b"renamed" in row.content
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.name == "renamed"


def test_it_renames_a_key_without_htmx_using_full_pages(owner_client: Client, triad: Triad, api_key: IssuedKey) -> None:
    url = _key_url(triad, api_key.api_key, "rename")
    page = owner_client.get(url)
    assert b"<html" in page.content
    assert b'name="name"' in page.content
    response = owner_client.post(url, {"name": "plain"})
    assert response.status_code == 302
    assert response["Location"] == _keys_url(triad)
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.name == "plain"


def test_it_sets_and_removes_a_limit(owner_client: Client, triad: Triad, api_key: IssuedKey) -> None:
    url = _key_url(triad, api_key.api_key, "limit")
    data = {"limit_usd": "100", "limit_reset": "monthly", "include_byok_in_limit": "on"}
    row = owner_client.post(url, data, headers=HTMX)
    assert b"$100.00" in row.content
    assert b"incl. BYOK" in row.content
    api_key.api_key.refresh_from_db()
    assert (api_key.api_key.limit_nanos, api_key.api_key.limit_reset) == (100_000_000_000, "monthly")
    assert api_key.api_key.include_byok_in_limit

    editor = owner_client.get(url, headers=HTMX).content.decode()
    assert 'value="100"' in editor
    assert re.search(r'<input type="checkbox" name="include_byok_in_limit"[^>]*checked', editor), editor

    bad = owner_client.post(url, {"limit_usd": "0.0000000001", "limit_reset": "daily"}, headers=HTMX)
    assert bad.status_code == 200
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.limit_nanos == 100_000_000_000

    owner_client.post(url, {"limit_usd": "", "limit_reset": "never"}, headers=HTMX)
    api_key.api_key.refresh_from_db()
    assert (api_key.api_key.limit_nanos, api_key.api_key.limit_reset) == (None, None)
    assert not api_key.api_key.include_byok_in_limit


def test_it_disables_and_re_enables_a_key_and_drops_the_gateway_cache(
    owner_client: Client, triad: Triad, api_key: IssuedKey
) -> None:
    from django.core.cache import cache

    cache.set(f"apikey:{api_key.api_key.hash}", "cached")
    url = _key_url(triad, api_key.api_key, "toggle")
    row = owner_client.post(url, headers=HTMX)
    assert b"Disabled" in row.content and b"Enable" in row.content
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.disabled
    assert cache.get(f"apikey:{api_key.api_key.hash}") is None

    response = owner_client.post(url)
    assert response.status_code == 302
    api_key.api_key.refresh_from_db()
    assert not api_key.api_key.disabled


def test_it_deletes_a_key_and_returns_an_empty_swap(owner_client: Client, triad: Triad, api_key: IssuedKey) -> None:
    response = owner_client.post(_key_url(triad, api_key.api_key, "delete"), headers=HTMX)
    assert response.status_code == 200
    assert response.content == b""
    assert not ApiKey.objects.filter(pk=api_key.api_key.pk).exists()


def test_it_swaps_the_plain_row_back_on_cancel(owner_client: Client, triad: Triad, api_key: IssuedKey) -> None:
    row = owner_client.get(f"/o/{triad.org.slug}/keys/{api_key.api_key.public_id}/", headers=HTMX)
    assert row.content.decode().lstrip().startswith("<tr")
    assert b"Rename" in row.content


def test_it_lets_an_admin_manage_keys(client: Client, triad: Triad, api_key: IssuedKey) -> None:
    client.force_login(triad.admin)
    client.post(_key_url(triad, api_key.api_key, "rename"), {"name": "by admin"}, headers=HTMX)
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.name == "by admin"


def test_it_shows_members_the_keys_but_refuses_every_manage_action(
    client: Client, triad: Triad, api_key: IssuedKey
) -> None:
    client.force_login(triad.member)
    page = client.get(_keys_url(triad))
    assert page.status_code == 200
    assert api_key.api_key.label.encode() in page.content
    assert b"Create key" not in page.content
    assert b"Rename" not in page.content

    assert client.post(_keys_url(triad), {"name": "sneaky", "limit_reset": "never"}).status_code == 403
    for action, data in [
        ("rename", {"name": "x"}),
        ("limit", {"limit_usd": "1", "limit_reset": "never"}),
        ("toggle", {}),
        ("delete", {}),
    ]:
        assert client.post(_key_url(triad, api_key.api_key, action), data, headers=HTMX).status_code == 403
    assert client.get(_key_url(triad, api_key.api_key, "rename")).status_code == 403
    api_key.api_key.refresh_from_db()
    assert (api_key.api_key.name, api_key.api_key.disabled) == ("test key", False)
    assert ApiKey.objects.filter(organization=triad.org).count() == 1


def test_it_cannot_reach_another_organizations_key_through_its_own_org(
    client: Client, triad: Triad, api_key: IssuedKey
) -> None:
    client.force_login(triad.outsider)
    url = f"/o/{triad.outsider_org.slug}/keys/{api_key.api_key.public_id}/delete/"
    assert client.post(url).status_code == 404
    assert ApiKey.objects.filter(pk=api_key.api_key.pk).exists()


def test_it_shows_what_a_key_has_spent_and_what_is_left_of_its_limit(owner_client: Client, triad: Triad) -> None:
    """Usage comes from the gate's live counters (unsettled spend included), as GET /api/v1/key reports it."""
    import time
    import uuid

    from asgiref.sync import async_to_sync

    from billing.gate import KeyState, get_gate
    from billing.services import credits_grant
    from billing.usage import UsageEvent
    from organizations.services import api_key_create

    issued = api_key_create(
        organization=triad.org, name="metered", created_by=triad.owner, limit_nanos=10_000_000_000, limit_reset="daily"
    )
    credits_grant(organization=triad.org, amount_nanos=20_000_000_000, reason="test")
    k = issued.api_key
    state = KeyState(
        key_id=k.pk,
        key_hash=k.hash,
        org_id=triad.org.pk,
        limit_nanos=k.limit_nanos,
        limit_reset=k.limit_reset,
        include_byok_in_limit=False,
        user_id=None,
    )
    gate = get_gate()
    assert async_to_sync(gate.admit)(
        reservation_id="r1", key=state, amount_nanos=5_000_000_000, is_free=False, is_byok=False
    ).ok
    event = UsageEvent(
        generation_id=f"gen-{uuid.uuid4().hex}",
        organization_id=triad.org.pk,
        api_key_id=k.pk,
        key_hash=k.hash,
        user_id=None,
        model="openai/gpt-4o",
        provider_slug="openai",
        provider_name="OpenAI",
        endpoint_tag="openai",
        created_at=time.time(),
        list_cost_nanos=1_250_000_000,
    )
    async_to_sync(gate.finish)(reservation_id="r1", key=state, event=event)

    page = owner_client.get(_keys_url(triad)).content.decode()
    assert "$1.25" in page
    assert "$8.75 left" in page
    row = owner_client.post(_key_url(triad, k, "rename"), {"name": "metered!"}, headers=HTMX).content.decode()
    assert "$1.25" in row and "$8.75 left" in row
