"""catalog_load: one transaction, idempotent, retires instead of deleting, keeps operator settings."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from proxy.catalog import snapshot
from proxy.catalog.services import CatalogError, catalog_load
from proxy.models import Endpoint, Model, Provider

pytestmark = pytest.mark.django_db


def _small(catalog: dict[str, Any], *ids: str) -> dict[str, Any]:
    data = copy.deepcopy(catalog)
    data["models"] = [m for m in data["models"] if m["record"]["id"] in ids]
    return data


def test_it_loads_the_full_catalog_in_seconds_and_twice_changes_nothing(shipped_catalog: dict[str, Any]) -> None:
    started = time.monotonic()
    first = catalog_load(data=shipped_catalog)
    elapsed = time.monotonic() - started
    assert elapsed < 10
    assert first.models == len(shipped_catalog["models"]) >= 549
    assert first.endpoints == sum(len(m["endpoints"]) for m in shipped_catalog["models"])
    ids_before = sorted(Endpoint.objects.values_list("pk", flat=True))

    second = catalog_load(data=shipped_catalog)

    assert (second.models, second.endpoints, second.providers) == (first.models, first.endpoints, first.providers)
    assert second.endpoints_retired == 0
    assert sorted(Endpoint.objects.values_list("pk", flat=True)) == ids_before
    without = Model.objects.exclude(endpoints__is_enabled=True)
    assert list(without.values_list("slug", flat=True)) == []


def test_it_stores_exact_nano_prices(shipped_catalog: dict[str, Any]) -> None:
    catalog_load(data=_small(shipped_catalog, "meta-llama/llama-3.3-70b-instruct"))
    ep = Endpoint.objects.select_related("provider").get(
        model__slug="meta-llama/llama-3.3-70b-instruct", tag="deepinfra/turbo"
    )
    assert (ep.prompt_nanos_per_mtok, ep.completion_nanos_per_mtok) == (100_000_000, 320_000_000)
    assert ep.provider.slug == "deepinfra"
    assert ep.quantization == "fp8"
    assert "tools" in ep.supported_parameters


def test_it_retires_endpoints_that_leave_the_file_and_revives_them(shipped_catalog: dict[str, Any]) -> None:
    full = _small(shipped_catalog, "meta-llama/llama-3.3-70b-instruct")
    catalog_load(data=full)
    shrunk = copy.deepcopy(full)
    shrunk["models"][0]["endpoints"] = [e for e in shrunk["models"][0]["endpoints"] if e["tag"] != "groq"]

    result = catalog_load(data=shrunk)

    groq = Endpoint.objects.get(model__slug="meta-llama/llama-3.3-70b-instruct", tag="groq")
    assert result.endpoints_retired == 1
    assert (groq.is_enabled, groq.retired) == (False, True)
    catalog_load(data=full)
    groq.refresh_from_db()
    assert (groq.is_enabled, groq.retired) == (True, False)


def test_it_keeps_what_the_operator_changed_in_the_admin(shipped_catalog: dict[str, Any]) -> None:
    data = _small(shipped_catalog, "meta-llama/llama-3.3-70b-instruct")
    catalog_load(data=data)
    Provider.objects.filter(slug="groq").update(base_url="https://groq.internal/v1", trains_on_prompts=False)
    Endpoint.objects.filter(tag="groq").update(upstream_model="llama-3.3-70b-versatile")
    Endpoint.objects.filter(tag="together").update(is_enabled=False)

    catalog_load(data=data)

    groq = Provider.objects.get(slug="groq")
    assert (groq.base_url, groq.trains_on_prompts) == ("https://groq.internal/v1", False)
    assert Endpoint.objects.get(tag="groq").upstream_model == "llama-3.3-70b-versatile"
    assert Endpoint.objects.get(tag="together").is_enabled is False


def test_it_writes_nothing_when_the_file_is_bad(shipped_catalog: dict[str, Any]) -> None:
    data = _small(shipped_catalog, "meta-llama/llama-3.3-70b-instruct", "openai/gpt-4o")
    data["models"][-1]["endpoints"][0]["provider"] = "no-such-provider"

    with pytest.raises(CatalogError, match="no-such-provider"):
        catalog_load(data=data)

    assert Model.objects.count() == 0
    assert Provider.objects.count() == 0


def test_it_refuses_a_file_that_is_not_a_catalog(tmp_path: Any) -> None:
    path = tmp_path / "models.json"
    path.write_text('{"data": []}')
    with pytest.raises(CatalogError, match="not a catalog file"):
        catalog_load(path=path)
    with pytest.raises(CatalogError, match="not found"):
        catalog_load(path=tmp_path / "missing.json")


def test_it_bumps_the_catalog_version_after_commit(
    shipped_catalog: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    before = snapshot.catalog_version()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        catalog_load(data=_small(shipped_catalog, "openai/gpt-4o"))
    assert len(callbacks) == 1
    assert snapshot.catalog_version() == before + 1
