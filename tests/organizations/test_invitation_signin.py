"""An invitation opened while signed out survives sign-up (with email verification) and sign-in."""

from __future__ import annotations

import re
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts.models import User
from organizations.models import Membership
from tests.support import Triad

pytestmark = pytest.mark.django_db


def _invite(triad: Triad, email: str) -> str:
    owner = Client()
    owner.force_login(triad.owner)
    assert (
        owner.post(f"/o/{triad.org.slug}/organization/invite/", {"email": email, "role": "member"}).status_code == 302
    )
    match = re.search(r"http://testserver(/invitations/[\w-]+/)", mail.outbox[-1].body)
    assert match is not None
    return match.group(1)


def test_a_new_user_signs_up_verifies_and_lands_on_the_invitation(triad: Triad, settings: Any) -> None:
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    path = _invite(triad, "newbie@example.com")
    visitor = Client()
    first = visitor.get(path)
    assert first.status_code == 302
    assert first["Location"] == f"/accounts/signup/?next={path}"
    signup = visitor.get(first["Location"]).content.decode()
    assert 'id="invitation-context"' in signup and "Acme" in signup and "newbie@example.com" in signup

    mail.outbox.clear()
    done = visitor.post(
        first["Location"],
        {"email": "newbie@example.com", "password1": "a long pass phrase 9", "password2": "a long pass phrase 9"},
    )
    assert done.status_code == 302 and "confirm-email" in done["Location"]  # verification first
    link = re.search(r"http://testserver(/accounts/confirm-email/[^\s]+/)", mail.outbox[-1].body)
    assert link is not None, mail.outbox[-1].body
    confirmed = visitor.post(link.group(1))
    assert confirmed["Location"] == path  # the mailed link dropped ?next=; the session kept the invitation

    page = visitor.get(path)
    assert page.status_code == 200 and b"Join Acme" in page.content
    assert visitor.post(path)["Location"] == f"/o/{triad.org.slug}/keys/"
    assert Membership.objects.filter(organization=triad.org, user__email="newbie@example.com").exists()
    assert "pending_invitation" not in visitor.session


def test_an_existing_user_is_sent_to_sign_in_and_back(triad: Triad) -> None:
    known = User.objects.create_user("known@example.com", "correct horse battery")
    EmailAddress.objects.create(user=known, email=known.email, verified=True, primary=True)
    path = _invite(triad, "known@example.com")
    visitor = Client()
    first = visitor.get(path)
    assert first["Location"].startswith("/accounts/login/?next=")
    login_page = visitor.get(first["Location"]).content.decode()
    assert 'id="invitation-context"' in login_page and "Acme" in login_page
    signed_in = visitor.post(first["Location"], {"login": "known@example.com", "password": "correct horse battery"})
    assert signed_in["Location"] == path


def test_a_dead_invitation_link_just_asks_to_sign_in(triad: Triad) -> None:
    visitor = Client()
    response = visitor.get("/invitations/not-a-real-token/")
    assert response["Location"].startswith("/accounts/login/?next=")
    assert "pending_invitation" not in visitor.session
    assert 'id="invitation-context"' not in visitor.get(response["Location"]).content.decode()
