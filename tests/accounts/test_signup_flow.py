"""Sign-up to first key, through allauth's real views and the Keys page, as a browser would."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import User
from organizations.models import ApiKey, Membership

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unusual passphrase"
HTMX = {"HX-Request": "true"}


def _sign_up_and_verify(client: Client, email: str) -> None:
    response = client.post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body)
    assert link is not None, mail.outbox[0].body
    confirm_url = link.group(1)
    assert client.get(confirm_url).status_code == 200
    assert client.post(confirm_url).status_code == 302


def test_it_takes_a_new_user_from_sign_up_to_a_key_shown_exactly_once(client: Client) -> None:
    _sign_up_and_verify(client, "newcomer@example.com")

    response = client.post("/accounts/login/", {"login": "newcomer@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/keys/"

    user = User.objects.get(email="newcomer@example.com")
    membership = Membership.objects.select_related("organization").get(user=user)
    org = membership.organization
    assert org.is_personal
    assert membership.role == Membership.Role.OWNER

    response = client.get("/keys/")
    assert response.status_code == 302
    assert response["Location"] == f"/o/{org.slug}/keys/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"No keys yet" in page.content

    created = client.post(
        f"/o/{org.slug}/keys/", {"name": "laptop", "limit_usd": "", "limit_reset": "never"}, headers=HTMX
    )
    assert created.status_code == 200
    assert b"<html" not in created.content  # an htmx partial, not a page
    match = re.search(r"sk-or-v1-[0-9a-f]{64}", created.content.decode())
    assert match is not None
    plaintext = match.group(0)
    assert created.content.decode().count(plaintext) == 1
    assert created["Cache-Control"] == "no-store"

    api_key = ApiKey.objects.get(organization=org)
    assert api_key.name == "laptop"
    assert api_key.created_by == user
    assert api_key.hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert api_key.hash != plaintext
    assert plaintext not in api_key.label

    again = client.get(f"/o/{org.slug}/keys/")
    assert plaintext not in again.content.decode()
    assert api_key.label in again.content.decode()


def test_it_refuses_sign_in_before_the_email_is_verified(client: Client) -> None:
    client.post("/accounts/signup/", {"email": "unverified@example.com", "password1": PASSWORD, "password2": PASSWORD})
    response = client.post("/accounts/login/", {"login": "unverified@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert client.get("/keys/")["Location"].startswith("/accounts/login/")


def test_it_re_renders_sign_up_with_errors_and_creates_nothing(client: Client) -> None:
    response = client.post("/accounts/signup/", {"email": "bad", "password1": "x", "password2": "y"})
    assert response.status_code == 200
    assert b"errorlist" in response.content or b'class="error"' in response.content
    assert not User.objects.exists()
    assert len(mail.outbox) == 0


def test_it_sends_anonymous_visitors_to_the_login_page(client: Client) -> None:
    # "/" itself is the landing page for signed-out visitors (tests/pages/test_landing.py).
    for url in ("/keys/", "/settings/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_it_renders_the_allauth_pages_inside_the_site_layout(client: Client) -> None:
    for url in ("/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"):
        response = client.get(url)
        assert response.status_code == 200
        assert b"OpenRouter Site" in response.content
        assert b"site.css" in response.content


def test_it_resets_a_password_through_the_emailed_link(client: Client) -> None:
    _sign_up_and_verify(client, "forgetful@example.com")
    mail.outbox.clear()
    response = client.post("/accounts/password/reset/", {"email": "forgetful@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body)
    assert link is not None, mail.outbox[0].body
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else link.group(1)
    new_password = "another long passphrase"
    done = client.post(set_url, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302
    assert User.objects.get(email="forgetful@example.com").check_password(new_password)


def test_it_signs_out_only_with_a_post(client: Client) -> None:
    _sign_up_and_verify(client, "leaver@example.com")
    client.post("/accounts/login/", {"login": "leaver@example.com", "password": PASSWORD})
    assert client.get("/keys/").status_code == 302
    client.get("/accounts/logout/")  # a GET only shows the confirmation page
    assert client.get("/settings/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/settings/")["Location"].startswith("/accounts/login/")


def test_it_names_the_product_in_the_verification_email(client: Client) -> None:
    client.post("/accounts/signup/", {"email": "named@example.com", "password1": PASSWORD, "password2": PASSWORD})
    body = mail.outbox[0].body
    assert body.startswith("Hello from OpenRouter Site!")
    assert "example.com!" not in body  # not the placeholder Site name
