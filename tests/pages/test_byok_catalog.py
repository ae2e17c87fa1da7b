"""BYOK with the catalog: the provider select, and "test this key" against a local mock provider."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from organizations.byok import provider_credential_set
from organizations.models import Membership, ProviderCredential
from proxy.models import Provider
from tests.mockprovider.server import SERVED_MODELS, MockProvider, free_port
from tests.support import Triad

pytestmark = pytest.mark.django_db
GOOD = "sk-mock-good-0123456789abcdef"


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    server = MockProvider(api_key=GOOD).start()
    yield server
    server.stop()


@pytest.fixture
def catalog(mock: MockProvider) -> Provider:
    Provider.objects.create(slug="keyless", name="Local vLLM", requires_api_key=False)
    return Provider.objects.create(slug="mockai", name="Mock AI", base_url=mock.openai_base_url)


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def _messages(response: object) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]  # type: ignore[attr-defined]


def test_the_form_offers_the_catalogs_providers_and_refuses_others(triad: Triad, catalog: Provider) -> None:
    owner = _client(triad.owner)
    page = owner.get(f"/o/{triad.org.slug}/byok/").content.decode()
    assert '<option value="mockai">Mock AI</option>' in page
    assert 'value="keyless"' not in page  # nothing to bring for a provider that takes no key
    assert f'href="/o/{triad.org.slug}/byok/" aria-current="page">BYOK</a>' in page  # in the nav

    add = f"/o/{triad.org.slug}/byok/add/"
    assert owner.post(add, {"provider_slug": "nope-provider", "secret": GOOD}).status_code == 400
    assert owner.post(add, {"provider_slug": "mockai", "secret": "abc"}).status_code == 400
    assert not ProviderCredential.objects.exists()
    assert owner.post(add, {"provider_slug": "mockai", "secret": GOOD}).status_code == 302
    assert ProviderCredential.objects.get().provider_slug == "mockai"


def test_test_this_key_lists_the_providers_models_with_the_orgs_key(
    triad: Triad, catalog: Provider, mock: MockProvider
) -> None:
    owner_membership = Membership.objects.get(organization=triad.org, user=triad.owner)
    credential = provider_credential_set(actor=owner_membership, provider_slug="mockai", secret=GOOD)
    owner = _client(triad.owner)
    url = f"/o/{triad.org.slug}/byok/{credential.pk}/test/"
    assert f'action="{url}"' in owner.get(f"/o/{triad.org.slug}/byok/").content.decode()

    ok = owner.post(url)
    assert ok.status_code == 302
    assert _messages(ok) == [f"Mock AI accepted the key ({len(SERVED_MODELS)} models listed)."]

    provider_credential_set(actor=owner_membership, provider_slug="mockai", secret="sk-mock-wrong-0123456789")
    refused = owner.post(url)
    assert _messages(refused)[-1] == "Mock AI refused the key (HTTP 401)."  # after the earlier, unread one
    assert all(GOOD not in m and "wrong" not in m for m in _messages(refused))  # never echoes a secret

    assert _client(triad.member).post(url).status_code == 403
    assert _client(triad.outsider).post(url).status_code == 404
    # The outsider's own organization does not reach our credential either.
    assert _client(triad.outsider).post(f"/o/{triad.outsider_org.slug}/byok/{credential.pk}/test/").status_code == 404


def test_an_unreachable_provider_is_reported_not_raised(triad: Triad, catalog: Provider) -> None:
    owner_membership = Membership.objects.get(organization=triad.org, user=triad.owner)
    credential = provider_credential_set(actor=owner_membership, provider_slug="mockai", secret=GOOD)
    Provider.objects.filter(slug="mockai").update(base_url=f"http://127.0.0.1:{free_port()}/v1")  # nobody listens
    response = _client(triad.owner).post(f"/o/{triad.org.slug}/byok/{credential.pk}/test/")
    assert _messages(response) == ["Mock AI could not be reached (connect)."]
