"""/models (total_count, links, pages), /models/user, /models/{author}/{slug} and the endpoint objects'
fields OpenRouter's SDKs require."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from django.test.utils import override_settings

from organizations.byok import provider_credential_set
from organizations.models import Membership
from organizations.services import IssuedKey, api_key_create
from proxy.models import Endpoint, Model, Provider
from proxy.selectors import catalog_cache_clear
from tests.billing.api.support import ApiClient
from tests.support import Triad

pytestmark = pytest.mark.django_db

PLATFORM_ENV = {"KEYED_API_KEY": "sk-platform"}


@pytest.fixture(autouse=True)
def _fresh_models_cache() -> Iterator[None]:
    catalog_cache_clear()
    yield
    catalog_cache_clear()


def _model(slug: str, provider: Provider, *, created: int, params: list[str] | None = None) -> Model:
    model = Model.objects.create(
        slug=slug,
        canonical_slug=slug,
        name=f"Test: {slug}",
        created=created,
        context_length=8192,
        input_modalities=["text"],
        output_modalities=["text"],
        supported_parameters=params or ["max_tokens"],
    )
    Endpoint.objects.create(
        model=model,
        provider=provider,
        tag=provider.slug,
        upstream_model=slug.split("/", 1)[1],
        context_length=8192,
        prompt_nanos_per_mtok=1_000_000_000,
        completion_nanos_per_mtok=2_000_000_000,
        supported_parameters=params or ["max_tokens"],
    )
    return model


@pytest.fixture
def catalog() -> dict[str, Provider]:
    """keyed: the platform has its key. byok: nobody but an organization that brings its own. open: needs none."""
    keyed = Provider.objects.create(slug="keyed", name="Keyed", adapter="openai", base_url="http://127.0.0.1:9/v1")
    byok = Provider.objects.create(slug="byok", name="Byok", adapter="openai", base_url="http://127.0.0.1:9/v1")
    open_ = Provider.objects.create(
        slug="open", name="Open", adapter="openai", base_url="http://127.0.0.1:9/v1", requires_api_key=False
    )
    _model("keyed/a", keyed, created=5, params=["tools", "tool_choice", "max_tokens"])
    _model("keyed/b", keyed, created=4, params=["tools"])
    _model("byok/c", byok, created=3)
    _model("open/d", open_, created=2)
    _model("keyed/e", keyed, created=1)
    return {"keyed": keyed, "byok": byok, "open": open_}


def test_models_carries_total_count_and_links(client: Client, catalog: dict[str, Provider]) -> None:
    body = client.get("/api/v1/models").json()
    assert [m["id"] for m in body["data"]] == ["keyed/a", "keyed/b", "byok/c", "open/d", "keyed/e"]
    assert body["total_count"] == 5
    assert body["links"] == {"next": None}


def test_models_pages_when_asked_and_links_to_the_next_page(client: Client, catalog: dict[str, Provider]) -> None:
    first = client.get("/api/v1/models", {"limit": 2, "supported_parameters": "tools"}).json()
    assert [m["id"] for m in first["data"]] == ["keyed/a", "keyed/b"]
    assert first["total_count"] == 2 and first["links"]["next"] is None

    page = client.get("/api/v1/models", {"offset": 1, "limit": 2}).json()
    assert [m["id"] for m in page["data"]] == ["keyed/b", "byok/c"]
    assert page["total_count"] == 5
    assert page["links"]["next"] == "/api/v1/models?offset=3&limit=2"
    last = client.get(page["links"]["next"]).json()
    assert [m["id"] for m in last["data"]] == ["open/d", "keyed/e"] and last["links"]["next"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=ten"])
def test_models_refuses_a_bad_page_in_the_envelope(client: Client, catalog: dict[str, Provider], query: str) -> None:
    response = client.get(f"/api/v1/models?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


@override_settings(PROVIDER_ENV=PLATFORM_ENV)
def test_models_user_lists_what_the_keys_organization_can_reach(
    catalog: dict[str, Provider], triad: Triad, api_key: IssuedKey
) -> None:
    body = ApiClient(api_key.key).get("/api/v1/models/user").json()
    # byok/c has no platform key and this organization brought none.
    assert [m["id"] for m in body["data"]] == ["keyed/a", "keyed/b", "open/d", "keyed/e"]
    assert body["total_count"] == 4 and body["links"] == {"next": None}

    owner = Membership.objects.get(organization=triad.org, user=triad.owner)
    provider_credential_set(actor=owner, provider_slug="byok", secret="sk-own-key")
    body = ApiClient(api_key.key).get("/api/v1/models/user", limit=3).json()
    assert [m["id"] for m in body["data"]] == ["keyed/a", "keyed/b", "byok/c"]
    assert body["total_count"] == 5 and body["links"]["next"] == "/api/v1/models/user?limit=3&offset=3"

    # Another organization's key does not see the first one's own provider key.
    outsider_key = api_key_create(organization=triad.outsider_org, name="o", created_by=triad.outsider)
    outsider = ApiClient(outsider_key.key).get("/api/v1/models/user").json()
    assert "byok/c" not in [m["id"] for m in outsider["data"]]


def test_models_user_needs_a_key(client: Client, catalog: dict[str, Provider]) -> None:
    response = client.get("/api/v1/models/user")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401


def test_models_retrieve_is_the_openai_model_object(client: Client, catalog: dict[str, Provider]) -> None:
    response = client.get("/api/v1/models/keyed/a")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "keyed/a" and body["object"] == "model" and body["owned_by"] == "keyed"
    assert body["created"] == 5 and body["links"] == {"details": "/api/v1/models/keyed/a/endpoints"}
    missing = client.get("/api/v1/models/keyed/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404


def test_endpoints_say_how_they_take_tool_choice_and_tiers(client: Client, catalog: dict[str, Provider]) -> None:
    full = client.get("/api/v1/models/keyed/a/endpoints").json()["data"]["endpoints"][0]
    assert full["supports_tool_choice"] == {"auto": True, "none": True, "required": True, "function": True}
    assert full["native_tools"] == {} and full["service_tier"] is None and full["supports_diarization"] is False
    tools_only = client.get("/api/v1/models/keyed/b/endpoints").json()["data"]["endpoints"][0]
    assert tools_only["supports_tool_choice"] == {"auto": True, "none": False, "required": False, "function": False}
    no_tools = client.get("/api/v1/models/keyed/e/endpoints").json()["data"]["endpoints"][0]
    assert not any(no_tools["supports_tool_choice"].values())


def test_zdr_endpoints_are_those_of_providers_that_retain_nothing(client: Client, catalog: dict[str, Provider]) -> None:
    assert client.get("/api/v1/endpoints/zdr").json() == {"data": []}
    Provider.objects.filter(slug="open").update(zdr=True)
    (endpoint,) = client.get("/api/v1/endpoints/zdr").json()["data"]
    assert endpoint["model_id"] == "open/d" and endpoint["provider_name"] == "Open"
    assert endpoint["supports_tool_choice"]["auto"] is False


def test_embedding_models_lists_only_embedding_output(client: Client, catalog: dict[str, Provider]) -> None:
    assert client.get("/api/v1/embeddings/models").json() == {"data": [], "total_count": 0, "links": {"next": None}}
    Model.objects.filter(slug="keyed/e").update(output_modalities=["embeddings"])
    catalog_cache_clear()
    body = client.get("/api/v1/embeddings/models").json()
    assert [m["id"] for m in body["data"]] == ["keyed/e"] and body["total_count"] == 1
