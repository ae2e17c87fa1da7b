"""BYOK: encryption at rest, rotation, the gateway's lookups, and the /o/<slug>/byok/ page."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings as SettingsWrapper

from organizations.byok import (
    byok_allows_platform_fallback,
    byok_fallback_set,
    byok_keys_for_org,
    byok_rotate,
    provider_credential_set,
)
from organizations.models import Membership, ProviderCredential
from organizations.services import OrganizationError
from tests.support import Triad

SECRET = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789WXYZ"


def _owner(triad: Triad) -> Membership:
    return Membership.objects.select_related("organization", "user").get(organization=triad.org, user=triad.owner)


def _client_for(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_it_encrypts_at_rest_and_round_trips(triad: Triad, settings: SettingsWrapper) -> None:
    settings.BYOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    credential = provider_credential_set(actor=_owner(triad), provider_slug="OpenAI ", secret=f"  {SECRET}\n")
    stored = ProviderCredential.objects.get(pk=credential.pk)
    assert stored.provider_slug == "openai" and stored.hint == "...WXYZ"
    assert SECRET not in stored.secret_encrypted and "WXYZ" not in stored.secret_encrypted
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}
    assert byok_keys_for_org(triad.outsider_org.pk) == {}


def test_it_replaces_a_providers_key(triad: Triad) -> None:
    provider_credential_set(actor=_owner(triad), provider_slug="anthropic", secret="sk-ant-old-0000000000")
    provider_credential_set(actor=_owner(triad), provider_slug="anthropic", secret="sk-ant-new-1111111111")
    assert ProviderCredential.objects.filter(organization=triad.org).count() == 1
    assert byok_keys_for_org(triad.org.pk) == {"anthropic": "sk-ant-new-1111111111"}


def test_it_leaves_out_disabled_keys(triad: Triad) -> None:
    credential = provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    ProviderCredential.objects.filter(pk=credential.pk).update(is_enabled=False)
    assert byok_keys_for_org(triad.org.pk) == {}


def test_it_hides_most_of_a_short_secret(triad: Triad) -> None:
    credential = provider_credential_set(actor=_owner(triad), provider_slug="groq", secret="short")
    assert credential.hint == "..."


def test_it_lets_only_managers_store_keys(triad: Triad) -> None:
    member = Membership.objects.get(organization=triad.org, user=triad.member)
    with pytest.raises(OrganizationError):
        provider_credential_set(actor=member, provider_slug="openai", secret=SECRET)
    with pytest.raises(OrganizationError):
        byok_fallback_set(actor=member, allow=False)
    assert not ProviderCredential.objects.exists()


def test_it_refuses_a_bad_provider_or_empty_secret(triad: Triad) -> None:
    for slug, secret in (("", SECRET), ("open ai", SECRET), ("../x", SECRET), ("openai", "   ")):
        with pytest.raises(OrganizationError):
            provider_credential_set(actor=_owner(triad), provider_slug=slug, secret=secret)
    assert not ProviderCredential.objects.exists()


def test_it_rotates_to_the_first_key(triad: Triad, settings: SettingsWrapper) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.BYOK_ENCRYPTION_KEYS = [old]
    credential = provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    before = ProviderCredential.objects.get(pk=credential.pk).secret_encrypted

    settings.BYOK_ENCRYPTION_KEYS = [new, old]  # the new key encrypts, the old one still decrypts
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}
    assert byok_rotate() == 1
    after = ProviderCredential.objects.get(pk=credential.pk).secret_encrypted
    assert after != before

    settings.BYOK_ENCRYPTION_KEYS = [new]  # the old key can now be dropped
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}


def test_it_skips_a_secret_no_key_can_read(
    triad: Triad, settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    settings.BYOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    settings.BYOK_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key was dropped too early
    with caplog.at_level(logging.ERROR):
        assert byok_keys_for_org(triad.org.pk) == {}
        assert byok_rotate() == 0
    assert "cannot be decrypted" in caplog.text and SECRET not in caplog.text


def test_it_rotates_from_the_command_line(
    triad: Triad, settings: SettingsWrapper, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.BYOK_ENCRYPTION_KEYS = [old]
    provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    settings.BYOK_ENCRYPTION_KEYS = [new, old]
    call_command("byok_rotate")
    assert "Re-encrypted 1 provider key" in capsys.readouterr().out
    settings.BYOK_ENCRYPTION_KEYS = [new]
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}
    call_command("byok_rotate", "--generate")
    Fernet(capsys.readouterr().out.strip().encode())  # a usable key


def test_it_derives_a_key_from_secret_key_when_none_is_set(
    triad: Triad, settings: SettingsWrapper, caplog: pytest.LogCaptureFixture
) -> None:
    settings.BYOK_ENCRYPTION_KEYS = []
    settings.SECRET_KEY = "a-test-secret-key-for-byok-derivation"
    with caplog.at_level(logging.WARNING):
        provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}
    assert "BYOK_ENCRYPTION_KEYS is not set" in caplog.text


def test_it_names_a_malformed_key_without_echoing_it(triad: Triad, settings: SettingsWrapper) -> None:
    settings.BYOK_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured) as exc:
        provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    assert "entry 1" in str(exc.value) and "not-a-fernet-key" not in str(exc.value)


def test_it_reports_the_fallback_choice(triad: Triad) -> None:
    assert byok_allows_platform_fallback(triad.org.pk) is True
    byok_fallback_set(actor=_owner(triad), allow=False)
    assert byok_allows_platform_fallback(triad.org.pk) is False


# --- The page --------------------------------------------------------------------------------


def test_it_adds_a_key_from_the_page_without_showing_it(triad: Triad, caplog: pytest.LogCaptureFixture) -> None:
    client = _client_for(triad.owner)
    with caplog.at_level(logging.DEBUG):
        r = client.post(f"/o/{triad.org.slug}/byok/add/", {"provider_slug": "openai", "secret": SECRET})
        assert r.status_code == 302 and r["Location"] == f"/o/{triad.org.slug}/byok/"
        page = client.get(r["Location"]).content.decode()
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}
    assert "openai" in page and "...WXYZ" in page
    assert SECRET not in page and SECRET not in caplog.text


def test_it_does_not_echo_the_secret_on_a_form_error(triad: Triad) -> None:
    r = _client_for(triad.owner).post(
        f"/o/{triad.org.slug}/byok/add/", {"provider_slug": "not valid", "secret": SECRET}
    )
    assert r.status_code == 400
    assert SECRET not in r.content.decode() and not ProviderCredential.objects.exists()


def test_it_shows_members_the_list_but_not_the_controls(triad: Triad) -> None:
    provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    client = _client_for(triad.member)
    page = client.get(f"/o/{triad.org.slug}/byok/").content.decode()
    assert "...WXYZ" in page and "Save key" not in page and SECRET not in page
    r = client.post(f"/o/{triad.org.slug}/byok/add/", {"provider_slug": "anthropic", "secret": "sk-ant-123456789012"})
    assert r.status_code == 403
    assert list(ProviderCredential.objects.values_list("provider_slug", flat=True)) == ["openai"]


def test_it_hides_the_page_and_keys_from_outsiders(triad: Triad) -> None:
    credential = provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    client = _client_for(triad.outsider)
    slug = triad.org.slug
    assert client.get(f"/o/{slug}/byok/").status_code == 404
    assert client.post(f"/o/{slug}/byok/add/", {"provider_slug": "x", "secret": "y" * 20}).status_code == 404
    assert client.post(f"/o/{slug}/byok/{credential.pk}/toggle/").status_code == 404
    assert client.post(f"/o/{slug}/byok/{credential.pk}/delete/").status_code == 404
    assert client.post(f"/o/{slug}/byok/fallback/", {}).status_code == 404
    # Their own org's URL cannot reach our credential either.
    own = triad.outsider_org.slug
    assert client.post(f"/o/{own}/byok/{credential.pk}/delete/").status_code == 404
    credential.refresh_from_db()
    assert credential.is_enabled and byok_allows_platform_fallback(triad.org.pk)


def test_it_toggles_and_deletes_from_the_page(triad: Triad) -> None:
    credential = provider_credential_set(actor=_owner(triad), provider_slug="openai", secret=SECRET)
    client = _client_for(triad.admin)
    client.post(f"/o/{triad.org.slug}/byok/{credential.pk}/toggle/")
    assert byok_keys_for_org(triad.org.pk) == {}
    client.post(f"/o/{triad.org.slug}/byok/{credential.pk}/toggle/")
    assert byok_keys_for_org(triad.org.pk) == {"openai": SECRET}
    client.post(f"/o/{triad.org.slug}/byok/{credential.pk}/delete/")
    assert not ProviderCredential.objects.exists()


def test_it_sets_the_fallback_from_the_page(triad: Triad) -> None:
    client = _client_for(triad.owner)
    client.post(f"/o/{triad.org.slug}/byok/fallback/", {})
    assert byok_allows_platform_fallback(triad.org.pk) is False
    client.post(f"/o/{triad.org.slug}/byok/fallback/", {"allow": "on"})
    assert byok_allows_platform_fallback(triad.org.pk) is True
