"""Which endpoints the gateway may call: platform credentials (read once into settings), keyless
hosts, and BYOK; and how much a request holds when nothing bounds its output."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pytest_django.fixtures import Settings

from common.env import env_with_suffix
from proxy.catalog.snapshot import CatalogSnapshot, catalog_from_db
from proxy.gateway.admission import worst_case
from proxy.gateway.validate import parse_request
from proxy.models import Endpoint, Model, Provider
from proxy.routing import RouteRequest, resolve

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings: Settings) -> dict[str, Provider]:
    settings.PROVIDER_ENV = {"KEYED_API_KEY": "sk-upstream"}
    providers = {
        "keyed": Provider.objects.create(slug="keyed", name="Keyed", base_url="https://keyed.example/v1"),
        "bare": Provider.objects.create(slug="bare", name="Bare", base_url="https://bare.example/v1"),
        "local": Provider.objects.create(
            slug="local", name="Local vLLM", base_url="http://127.0.0.1:8001/v1", requires_api_key=False
        ),
    }
    model = Model.objects.create(slug="acme/m", name="M", context_length=8192)
    for slug, provider in providers.items():
        Endpoint.objects.create(model=model, provider=provider, tag=slug, upstream_model="m", context_length=8192)
    return providers


def reachable(snapshot: CatalogSnapshot, byok: frozenset[str] = frozenset()) -> set[tuple[str, bool]]:
    resolved = resolve(RouteRequest(models=("acme/m",), byok_providers=byok), snapshot, random.Random(1))
    return {(o.candidate.provider_slug, o.candidate.is_byok) for _, options in resolved.choices for o in options}


def test_it_skips_platform_endpoints_without_credentials_but_serves_keyless_hosts(world: dict[str, Provider]) -> None:
    snapshot = catalog_from_db()
    assert snapshot.platform_keys == {"keyed": "sk-upstream"}
    assert reachable(snapshot) == {("keyed", False), ("local", False)}


def test_it_uses_a_base_url_override_as_configuration(world: dict[str, Provider], settings: Settings) -> None:
    settings.PROVIDER_ENV = {**settings.PROVIDER_ENV, "BARE_BASE_URL": "http://127.0.0.1:9000/v1"}
    snapshot = catalog_from_db()
    assert "bare" in snapshot.configured
    bare = next(c for c in snapshot.models["acme/m"].candidates if c.provider_slug == "bare")
    assert bare.base_url.endswith(":9000/v1")


def test_the_organizations_own_key_reaches_a_provider_the_platform_cannot(world: dict[str, Provider]) -> None:
    expected = {("keyed", False), ("local", False), ("bare", True)}
    assert reachable(catalog_from_db(), byok=frozenset({"bare"})) == expected


def test_settings_collect_provider_variables_by_suffix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMEHOST_API_KEY", " sk-x ")
    monkeypatch.setenv("SOMEHOST_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("EMPTYHOST_API_KEY", "")
    collected = env_with_suffix("_API_KEY", "_BASE_URL")
    assert collected["SOMEHOST_API_KEY"] == "sk-x"
    assert collected["SOMEHOST_BASE_URL"] == "http://127.0.0.1:1/v1"
    assert "EMPTYHOST_API_KEY" not in collected


def test_it_caps_the_hold_when_nothing_bounds_the_output(world: dict[str, Provider], settings: Settings) -> None:
    settings.GATEWAY_HOLD_MAX_OUTPUT_TOKENS = 1_000
    Endpoint.objects.update(context_length=1_000_000, completion_nanos_per_mtok=10_000_000_000)
    candidate = catalog_from_db().models["acme/m"].candidates[0]
    assert candidate.max_completion_tokens is None

    def hold(body: dict[str, Any]) -> int:
        call = SimpleNamespace(req=parse_request(orjson.dumps(body)), prompt_tokens=10)
        return worst_case(call, candidate)  # type: ignore[arg-type]

    messages = [{"role": "user", "content": "hi"}]
    assert hold({"model": "acme/m", "messages": messages}) == 1_000 * 10_000  # 1,000 tokens at $10/M
    assert hold({"model": "acme/m", "messages": messages, "max_tokens": 5_000}) == 5_000 * 10_000
