"""Which endpoints the gateway may call: platform credentials, keyless hosts, and BYOK."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from proxy.catalog.snapshot import catalog_from_db
from proxy.gateway.auth import OrgContext
from proxy.gateway.service import _usable
from proxy.models import Endpoint, Model, Provider
from proxy.routing import Attempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Provider]:
    monkeypatch.setenv("KEYED_API_KEY", "sk-upstream")
    monkeypatch.delenv("BARE_API_KEY", raising=False)
    monkeypatch.delenv("BARE_BASE_URL", raising=False)
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


def attempts() -> tuple[Attempt, ...]:
    snapshot = catalog_from_db()
    info = snapshot.get("acme/m")
    assert info is not None
    return tuple(Attempt(candidate=c, model_slug="acme/m") for c in info.candidates)


def context(byok: dict[str, str] | None = None, fallback: bool = True) -> OrgContext:
    return OrgContext(byok_keys=byok or {}, allow_platform_fallback=fallback, log_prompts=False)


def test_it_skips_platform_endpoints_without_credentials_but_serves_keyless_hosts(world: dict[str, Provider]) -> None:
    snapshot = catalog_from_db()
    assert snapshot.platform_keys == {"keyed": "sk-upstream"}
    usable = {a.candidate.provider_slug for a in _usable(attempts(), snapshot, context())}
    assert usable == {"keyed", "local"}


def test_it_uses_a_base_url_override_as_configuration(
    world: dict[str, Provider], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BARE_BASE_URL", "http://127.0.0.1:9000/v1")
    snapshot = catalog_from_db()
    assert "bare" in snapshot.configured
    assert next(c for c in snapshot.get("acme/m").candidates if c.provider_slug == "bare").base_url.endswith(":9000/v1")  # type: ignore[union-attr]


def test_it_drops_the_platform_fallback_when_the_org_forbids_it(world: dict[str, Provider]) -> None:
    snapshot = catalog_from_db()
    byok = [
        replace(a, candidate=replace(a.candidate, is_byok=True))
        for a in attempts()
        if a.candidate.provider_slug == "keyed"
    ]
    plan = (*byok, *attempts())
    allowed = _usable(plan, snapshot, context({"keyed": "sk-org"}, fallback=True))
    assert next((a.candidate.provider_slug, a.candidate.is_byok) for a in allowed) == ("keyed", True)
    assert ("keyed", False) in [(a.candidate.provider_slug, a.candidate.is_byok) for a in allowed]
    strict = _usable(plan, snapshot, context({"keyed": "sk-org"}, fallback=False))
    assert ("keyed", False) not in [(a.candidate.provider_slug, a.candidate.is_byok) for a in strict]


def test_it_caps_the_hold_when_nothing_bounds_the_output(world: dict[str, Provider], settings: Any) -> None:
    from proxy.gateway.service import _worst_case
    from proxy.gateway.validate import parse_request

    settings.GATEWAY_HOLD_MAX_OUTPUT_TOKENS = 1_000
    Endpoint.objects.update(context_length=1_000_000, completion_nanos_per_mtok=10_000_000_000)
    candidate = attempts()[0].candidate
    assert candidate.max_completion_tokens is None

    def hold(body: dict[str, Any]) -> int:
        call = SimpleNamespace(req=parse_request(orjson.dumps(body)), prompt_tokens=10)
        return _worst_case(call, candidate)  # type: ignore[arg-type]

    messages = [{"role": "user", "content": "hi"}]
    assert hold({"model": "acme/m", "messages": messages}) == 1_000 * 10_000  # 1,000 tokens at $10/M
    assert hold({"model": "acme/m", "messages": messages, "max_tokens": 5_000}) == 5_000 * 10_000
