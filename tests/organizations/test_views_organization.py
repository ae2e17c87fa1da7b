"""The Organization page: members and roles, removal, new organizations, the switcher, privacy."""

from __future__ import annotations

import pytest
from django.test import Client

from organizations.models import Membership, Organization
from tests.support import Triad


def _membership(triad: Triad, user: object) -> Membership:
    return Membership.objects.get(organization=triad.org, user=user)


def test_it_lists_members_with_roles(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    page = client.get(f"/o/{triad.org.slug}/organization/").content.decode()
    for user in (triad.owner, triad.admin, triad.member):
        assert user.email in page
    assert triad.outsider.email not in page
    assert "Send invitation" not in page  # members do not invite


def test_it_lets_an_owner_change_a_role(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    target = _membership(triad, triad.member)
    response = client.post(f"/o/{triad.org.slug}/organization/members/{target.pk}/role/", {"role": "admin"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.role == "admin"


def test_it_refuses_to_let_an_admin_make_an_owner(client: Client, triad: Triad) -> None:
    client.force_login(triad.admin)
    target = _membership(triad, triad.member)
    response = client.post(
        f"/o/{triad.org.slug}/organization/members/{target.pk}/role/", {"role": "owner"}, follow=True
    )
    assert b"Only an owner can make someone an owner." in response.content
    target.refresh_from_db()
    assert target.role == "member"


def test_it_keeps_the_last_owner(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    me = _membership(triad, triad.owner)
    response = client.post(f"/o/{triad.org.slug}/organization/members/{me.pk}/role/", {"role": "member"}, follow=True)
    assert b"at least one owner" in response.content
    me.refresh_from_db()
    assert me.role == "owner"


def test_it_rejects_an_unknown_role(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    target = _membership(triad, triad.member)
    client.post(f"/o/{triad.org.slug}/organization/members/{target.pk}/role/", {"role": "emperor"})
    target.refresh_from_db()
    assert target.role == "member"


def test_it_forbids_members_from_changing_roles_or_removing_others(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    admin = _membership(triad, triad.admin)
    assert (
        client.post(f"/o/{triad.org.slug}/organization/members/{admin.pk}/role/", {"role": "member"}).status_code == 403
    )
    assert client.post(f"/o/{triad.org.slug}/organization/members/{admin.pk}/remove/").status_code == 403
    admin.refresh_from_db()
    assert admin.role == "admin"


def test_it_lets_an_admin_remove_a_member(client: Client, triad: Triad) -> None:
    client.force_login(triad.admin)
    target = _membership(triad, triad.member)
    client.post(f"/o/{triad.org.slug}/organization/members/{target.pk}/remove/")
    assert not Membership.objects.filter(pk=target.pk).exists()


def test_it_lets_a_member_leave_and_then_treats_them_as_an_outsider(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    me = _membership(triad, triad.member)
    response = client.post(f"/o/{triad.org.slug}/organization/members/{me.pk}/remove/")
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=me.pk).exists()
    assert client.get(f"/o/{triad.org.slug}/keys/").status_code == 404


def test_it_creates_an_organization_owned_by_its_creator(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    response = client.post("/o/new/", {"name": "Side Project"})
    org = Organization.objects.get(name="Side Project")
    assert response["Location"] == f"/o/{org.slug}/organization/"
    assert Membership.objects.get(organization=org, user=triad.member).role == "owner"
    assert not org.is_personal
    assert client.session["current_org"] == org.slug


def test_it_refuses_a_blank_organization_name(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    before = Organization.objects.count()
    client.post("/o/new/", {"name": "   "})
    assert Organization.objects.count() == before


def test_it_switches_the_current_organization(client: Client, triad: Triad) -> None:
    from organizations.services import organization_create

    second = organization_create(name="Second", owner=triad.owner)
    client.force_login(triad.owner)
    response = client.post("/o/switch/", {"organization": second.slug})
    assert response.status_code == 302
    assert response["Location"] == f"/o/{second.slug}/keys/"
    assert client.session["current_org"] == second.slug
    assert client.get("/keys/")["Location"] == f"/o/{second.slug}/keys/"

    htmx = client.post("/o/switch/", {"organization": triad.org.slug}, headers={"HX-Request": "true"})
    assert htmx["HX-Redirect"] == f"/o/{triad.org.slug}/keys/"
    assert client.get("/")["Location"] == f"/o/{triad.org.slug}/keys/"


def test_it_marks_the_current_organization_in_the_switcher(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    page = client.get(f"/o/{triad.org.slug}/keys/").content.decode()
    assert f'<option value="{triad.org.slug}" selected>' in page
    assert triad.outsider_org.slug not in page


def test_it_404s_a_switch_to_an_unknown_organization(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    assert client.post("/o/switch/", {"organization": "nope"}).status_code == 404
    assert client.post("/o/switch/", {}).status_code == 404


@pytest.mark.parametrize(("who", "status"), [("owner", 302), ("admin", 302), ("member", 403)])
def test_it_lets_only_owners_and_admins_switch_prompt_logging(
    client: Client, triad: Triad, who: str, status: int
) -> None:
    client.force_login(getattr(triad, who))
    response = client.post(f"/o/{triad.org.slug}/privacy/", {"log_prompts": "on"})
    assert response.status_code == status
    triad.org.refresh_from_db()
    assert triad.org.log_prompts is (status == 302)


def test_it_turns_prompt_logging_off_when_the_box_is_unchecked(client: Client, triad: Triad) -> None:
    Organization.objects.filter(pk=triad.org.pk).update(log_prompts=True)
    client.force_login(triad.owner)
    client.post(f"/o/{triad.org.slug}/privacy/", {})
    triad.org.refresh_from_db()
    assert triad.org.log_prompts is False


def test_it_shows_the_privacy_switch_on_settings_only_to_managers(client: Client, triad: Triad) -> None:
    client.force_login(triad.owner)
    client.post("/o/switch/", {"organization": triad.org.slug})
    page = client.get("/settings/").content.decode()
    assert triad.owner.email in page
    assert 'name="log_prompts"' in page
    assert "/accounts/password/change/" in page

    client.force_login(triad.member)
    client.post("/o/switch/", {"organization": triad.org.slug})
    page = client.get("/settings/").content.decode()
    assert 'name="log_prompts"' not in page
    assert "Owners and admins change this." in page


def test_it_renders_the_activity_shell_with_the_navigation(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    page = client.get(f"/o/{triad.org.slug}/activity/").content.decode()
    assert "Activity" in page
    for link in ("/keys/", "/credits/", "/activity/", "/models/", "/organization/", "/settings/"):
        assert link in page


def test_it_offers_a_user_without_any_organization_to_create_one(client: Client, triad: Triad) -> None:
    from accounts.models import User

    loner = User.objects.create_user("loner@example.com", "pw for the loner 1")
    client.force_login(loner)
    assert client.get("/")["Location"] == "/settings/"
    page = client.get("/settings/").content.decode()
    assert 'action="/o/new/"' in page
    assert 'name="log_prompts"' not in page
