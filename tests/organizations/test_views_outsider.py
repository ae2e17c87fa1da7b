"""Tenant isolation: someone outside the organization gets 404 on every org URL, and nothing changes."""

from __future__ import annotations

import pytest
from django.test import Client

from organizations.models import ApiKey, Invitation, Membership
from organizations.services import invitation_create
from tests.support import Triad

# (method, path template, form data). {slug}, {key}, {member} and {invitation} are filled per test.
ORG_URLS = [
    ("get", "/o/{slug}/keys/", {}),
    ("post", "/o/{slug}/keys/", {"name": "x", "limit_reset": "never"}),
    ("get", "/o/{slug}/keys/{key}/", {}),
    ("get", "/o/{slug}/keys/{key}/rename/", {}),
    ("post", "/o/{slug}/keys/{key}/rename/", {"name": "x"}),
    ("get", "/o/{slug}/keys/{key}/limit/", {}),
    ("post", "/o/{slug}/keys/{key}/limit/", {"limit_usd": "1", "limit_reset": "never"}),
    ("post", "/o/{slug}/keys/{key}/toggle/", {}),
    ("post", "/o/{slug}/keys/{key}/delete/", {}),
    ("get", "/o/{slug}/organization/", {}),
    ("post", "/o/{slug}/organization/invite/", {"email": "x@example.com", "role": "member"}),
    ("post", "/o/{slug}/organization/members/{member}/role/", {"role": "owner"}),
    ("post", "/o/{slug}/organization/members/{member}/remove/", {}),
    ("post", "/o/{slug}/organization/invitations/{invitation}/revoke/", {}),
    ("post", "/o/{slug}/privacy/", {"log_prompts": "on"}),
    ("get", "/o/{slug}/activity/", {}),
    ("post", "/o/switch/", {"organization": "{slug}"}),
]


@pytest.fixture
def targets(triad: Triad) -> dict[str, str]:
    api_key = ApiKey.objects.create(organization=triad.org, name="victim", label="l", hash="0" * 64)
    owner_membership = Membership.objects.get(organization=triad.org, user=triad.owner)
    issued = invitation_create(actor=owner_membership, email="invitee@example.com", role="member")
    return {
        "slug": triad.org.slug,
        "key": str(api_key.public_id),
        "member": str(Membership.objects.get(organization=triad.org, user=triad.member).pk),
        "invitation": str(issued.invitation.public_id),
    }


def _fill(template: str, targets: dict[str, str]) -> str:
    return template.format(**targets)


@pytest.mark.parametrize(("method", "path", "data"), ORG_URLS, ids=[f"{m} {p}" for m, p, _ in ORG_URLS])
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_it_gives_an_outsider_404_on_every_org_url(
    client: Client,
    triad: Triad,
    targets: dict[str, str],
    method: str,
    path: str,
    data: dict[str, str],
    headers: dict[str, str],
) -> None:
    client.force_login(triad.outsider)
    filled = {k: _fill(v, targets) for k, v in data.items()}
    response = getattr(client, method)(_fill(path, targets), filled, headers=headers)
    assert response.status_code == 404

    assert ApiKey.objects.filter(organization=triad.org).count() == 1
    assert ApiKey.objects.get(organization=triad.org).name == "victim"
    assert not ApiKey.objects.get(organization=triad.org).disabled
    assert Membership.objects.filter(organization=triad.org).count() == 3
    assert Membership.objects.get(organization=triad.org, user=triad.member).role == "member"
    assert Invitation.objects.filter(organization=triad.org).count() == 1
    triad.org.refresh_from_db()
    assert not triad.org.log_prompts
    assert client.session.get("current_org") != triad.org.slug


@pytest.mark.parametrize(("method", "path", "data"), ORG_URLS, ids=[f"{m} {p}" for m, p, _ in ORG_URLS])
def test_it_sends_anonymous_visitors_of_every_org_url_to_sign_in(
    client: Client, targets: dict[str, str], method: str, path: str, data: dict[str, str]
) -> None:
    response = getattr(client, method)(_fill(path, targets), data)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
