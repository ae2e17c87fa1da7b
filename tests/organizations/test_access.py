"""`org_page`, the one way a browser page finds its organization, seen through real URLs.

The Organization page (any member) and its invite action (owners and admins) stand in for every
`/o/<slug>/...` page: they are decorated the same way as Keys, BYOK, Credits and Activity.
"""

from __future__ import annotations

import pytest
from django.test import Client

from organizations.models import Invitation, Membership
from organizations.services import organization_create
from tests.support import Triad


def _page(triad: Triad) -> str:
    return f"/o/{triad.org.slug}/organization/"


def _manage(triad: Triad) -> str:
    return f"/o/{triad.org.slug}/organization/invite/"


INVITE = {"email": "new@example.com", "role": "member"}


def test_it_sends_an_anonymous_visitor_to_sign_in_and_back(client: Client, triad: Triad) -> None:
    response = client.get(_page(triad))
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={_page(triad)}"
    assert client.post(_manage(triad), INVITE)["Location"].startswith("/accounts/login/")
    assert not Invitation.objects.exists()


def test_it_answers_an_outsider_exactly_as_for_an_organization_that_does_not_exist(
    client: Client, triad: Triad
) -> None:
    client.force_login(triad.outsider)
    client.get(f"/o/{triad.outsider_org.slug}/organization/")
    real = client.get(_page(triad))
    missing = client.get("/o/no-such-org/organization/")
    assert (real.status_code, missing.status_code) == (404, 404)
    assert real.content == missing.content  # no hint that the organization exists
    # Even a manage action: the outsider learns nothing about roles, and nothing is written.
    assert client.post(_manage(triad), INVITE).status_code == 404
    assert not Invitation.objects.exists()
    assert client.session["current_org"] == triad.outsider_org.slug


def test_it_refuses_a_member_a_manage_action_and_keeps_their_current_organization(client: Client, triad: Triad) -> None:
    own = organization_create(name="Bob's side project", owner=triad.member)
    client.force_login(triad.member)
    client.get(f"/o/{own.slug}/organization/")
    assert client.post(_manage(triad), INVITE).status_code == 403
    assert not Invitation.objects.exists()
    assert client.session["current_org"] == own.slug  # a refused request switches nothing


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_it_lets_owners_and_admins_manage(client: Client, triad: Triad, who: str) -> None:
    client.force_login(getattr(triad, who))
    response = client.post(_manage(triad), INVITE)
    assert response.status_code == 302
    assert Invitation.objects.get().organization == triad.org


def test_it_hands_the_view_the_organization_and_the_visitors_membership(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    response = client.get(_page(triad))
    assert response.status_code == 200
    assert response.context["organization"] == triad.org
    assert response.context["membership"] == Membership.objects.get(organization=triad.org, user=triad.member)
    assert response.context["can_manage"] is False


def test_it_makes_the_visited_organization_the_current_one(client: Client, triad: Triad) -> None:
    second = organization_create(name="Second", owner=triad.owner)
    client.force_login(triad.owner)
    assert client.get("/")["Location"] == f"/o/{triad.org.slug}/keys/"  # the first by default

    page = client.get(f"/o/{second.slug}/organization/")
    assert client.session["current_org"] == second.slug
    assert f'<option value="{second.slug}" selected>' in page.content.decode()  # in this very response
    assert client.get("/")["Location"] == f"/o/{second.slug}/keys/"
    assert client.get("/settings/").context["current_organization"] == second
