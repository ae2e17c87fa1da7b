"""Invitations: invite by email (link in mail.outbox), accept with the right email, refuse others, revoke."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import User
from organizations.models import Invitation, Membership
from tests.support import Triad


def _invite(client: Client, triad: Triad, email: str = "newbie@example.com", role: str = "member") -> str:
    """Invite as the owner; returns the accept path from the email."""
    client.force_login(triad.owner)
    response = client.post(f"/o/{triad.org.slug}/organization/invite/", {"email": email, "role": role})
    assert response.status_code == 302
    match = re.search(r"http://testserver(/invitations/[\w-]+/)", mail.outbox[-1].body)
    assert match is not None, mail.outbox[-1].body
    return match.group(1)


def test_it_emails_an_accept_link_and_lists_the_pending_invitation(client: Client, triad: Triad) -> None:
    _invite(client, triad, email="NewBie@Example.com", role="admin")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["newbie@example.com"]
    assert "Acme" in mail.outbox[0].subject
    invitation = Invitation.objects.get(organization=triad.org)
    assert invitation.role == "admin"
    token = mail.outbox[0].body.split("/invitations/")[1].split("/")[0]
    assert invitation.token_hash != token
    page = client.get(f"/o/{triad.org.slug}/organization/").content.decode()
    assert "newbie@example.com" in page


def test_it_adds_the_invited_user_on_accept_with_the_right_email(client: Client, triad: Triad) -> None:
    path = _invite(client, triad, role="admin")
    newbie = User.objects.create_user("newbie@example.com", "pw for newbie 123")
    client.force_login(newbie)
    page = client.get(path)
    assert page.status_code == 200
    assert b"Join Acme" in page.content
    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == f"/o/{triad.org.slug}/keys/"
    assert Membership.objects.get(organization=triad.org, user=newbie).role == "admin"
    assert client.session["current_org"] == triad.org.slug
    # Single use: the same link does not work twice.
    assert client.post(path).status_code == 400


def test_it_refuses_a_user_signed_in_with_another_email(client: Client, triad: Triad) -> None:
    path = _invite(client, triad)
    client.force_login(triad.outsider)
    page = client.get(path)
    assert page.status_code == 400
    assert b"sent to newbie@example.com" in page.content
    assert client.post(path).status_code == 400
    assert not Membership.objects.filter(organization=triad.org, user=triad.outsider).exists()
    assert Invitation.objects.get(organization=triad.org).accepted_at is None


def test_it_refuses_an_expired_invitation(client: Client, triad: Triad) -> None:
    path = _invite(client, triad)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    newbie = User.objects.create_user("newbie@example.com", "pw for newbie 123")
    client.force_login(newbie)
    response = client.post(path)
    assert response.status_code == 400
    assert b"no longer valid" in response.content
    assert not Membership.objects.filter(organization=triad.org, user=newbie).exists()


def test_it_refuses_an_unknown_token(client: Client, triad: Triad) -> None:
    client.force_login(triad.member)
    assert client.post("/invitations/not-a-real-token/").status_code == 400


def test_it_sends_an_anonymous_visitor_to_sign_in_first(client: Client, triad: Triad) -> None:
    path = _invite(client, triad)
    client.logout()
    response = client.get(path)
    assert response.status_code == 302
    # No account for the invited address yet: sign-up (tests/organizations/test_invitation_signin.py).
    assert response["Location"].startswith("/accounts/signup/?next=/invitations/")


def test_it_revokes_a_pending_invitation(client: Client, triad: Triad) -> None:
    path = _invite(client, triad)
    invitation = Invitation.objects.get(organization=triad.org)
    client.post(f"/o/{triad.org.slug}/organization/invitations/{invitation.public_id}/revoke/")
    assert not Invitation.objects.exists()
    newbie = User.objects.create_user("newbie@example.com", "pw for newbie 123")
    client.force_login(newbie)
    assert client.post(path).status_code == 400


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "not-an-email", "role": "member"}, "Enter a valid email address."),
        ({"email": "x@example.com", "role": "boss"}, "Select a valid choice."),
        ({"email": "bob@example.com", "role": "member"}, "bob@example.com is already a member."),
    ],
)
def test_it_re_renders_the_invite_form_with_errors_and_sends_nothing(
    client: Client, triad: Triad, data: dict[str, str], error: str
) -> None:
    client.force_login(triad.owner)
    response = client.post(f"/o/{triad.org.slug}/organization/invite/", data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Invitation.objects.exists()
    assert len(mail.outbox) == 0


def test_it_forbids_members_from_inviting_or_revoking(client: Client, triad: Triad) -> None:
    path = _invite(client, triad)
    assert path
    invitation = Invitation.objects.get(organization=triad.org)
    client.force_login(triad.member)
    url = f"/o/{triad.org.slug}/organization/invite/"
    assert client.post(url, {"email": "x@example.com", "role": "member"}).status_code == 403
    revoke = f"/o/{triad.org.slug}/organization/invitations/{invitation.public_id}/revoke/"
    assert client.post(revoke).status_code == 403
    assert Invitation.objects.count() == 1


def test_it_lets_only_an_owner_invite_an_owner(client: Client, triad: Triad) -> None:
    client.force_login(triad.admin)
    response = client.post(f"/o/{triad.org.slug}/organization/invite/", {"email": "x@example.com", "role": "owner"})
    assert response.status_code == 400
    assert b"Only an owner can invite an owner." in response.content
    assert not Invitation.objects.exists()
