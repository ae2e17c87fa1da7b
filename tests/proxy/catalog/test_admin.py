"""The catalog and users in the admin console: listed, searchable, filterable, secrets never shown."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from proxy.catalog.services import catalog_load
from proxy.models import Endpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_catalog(shipped_catalog: dict[str, Any]) -> None:
    data = dict(shipped_catalog)
    data["models"] = [m for m in shipped_catalog["models"] if m["record"]["id"] == "meta-llama/llama-3.3-70b-instruct"]
    catalog_load(data=data)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/proxy/provider/?q=deep",
        "/admin/proxy/provider/?adapter__exact=gemini",
        "/admin/proxy/model/?q=llama",
        "/admin/proxy/endpoint/?q=groq&is_enabled__exact=1",
        "/admin/accounts/user/?q=admin",
    ],
)
def test_it_lists_searches_and_filters(admin_client: Client, small_catalog: None, url: str) -> None:
    response = admin_client.get(url)
    assert response.status_code == 200


def test_it_shows_whether_a_provider_key_is_set_but_never_the_key(
    admin_client: Client, small_catalog: None, settings: Settings
) -> None:
    settings.PROVIDER_ENV = {"DEEPINFRA_API_KEY": "sk-secret-value-123"}
    body = admin_client.get("/admin/proxy/provider/?q=deepinfra").content.decode()
    assert "sk-secret-value-123" not in body
    assert "set" in body
    body = admin_client.get("/admin/proxy/provider/?q=groq").content.decode()
    assert "GROQ_API_KEY" in body


def test_it_edits_an_endpoints_upstream_name(admin_client: Client, small_catalog: None) -> None:
    endpoint = Endpoint.objects.get(tag="groq")
    page = admin_client.get(f"/admin/proxy/endpoint/{endpoint.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {"model": endpoint.model_id, "provider": endpoint.provider_id, "upstream_model": "llama-3.3-70b-versatile"}
    )
    data["supported_parameters"] = '["tools"]'
    response = admin_client.post(f"/admin/proxy/endpoint/{endpoint.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint.refresh_from_db()
    assert endpoint.upstream_model == "llama-3.3-70b-versatile"


def test_it_shows_live_endpoint_health_in_the_admin(admin_client: Client, small_catalog: None) -> None:
    import asyncio

    from proxy.health import get_health_store

    endpoint = Endpoint.objects.filter(tag__startswith="deepinfra").first()
    assert endpoint is not None
    store = get_health_store()
    for ok in (True, True, True, False):
        asyncio.run(store.record(endpoint.pk, ok=ok, latency_ms=120.0, ttft_ms=80.0, tokens=50, duration_ms=500.0))
    listing = admin_client.get("/admin/proxy/endpoint/?q=deepinfra").content.decode()
    assert "75.0%" in listing
    detail = admin_client.get(f"/admin/proxy/endpoint/{endpoint.pk}/change/").content.decode()
    assert "uptime last 30m: 75.0" in detail
