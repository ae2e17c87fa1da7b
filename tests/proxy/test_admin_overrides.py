"""Operator console: prices typed and shown in USD per million tokens, operators' edits surviving every
catalog load (the load at each start), marked as overrides, and "revert to catalog" putting the file back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from proxy.catalog.build import DEFAULT_OUT
from proxy.catalog.services import catalog_load, catalog_read
from proxy.catalog.snapshot import catalog_version
from proxy.models import Endpoint, Model

pytestmark = pytest.mark.django_db

LLAMA = "meta-llama/llama-3.3-70b-instruct"


@pytest.fixture(scope="module")
def llama_catalog() -> dict[str, Any]:
    data = copy.deepcopy(catalog_read(DEFAULT_OUT))
    data["models"] = [m for m in data["models"] if m["record"]["id"] == LLAMA]
    return data


@pytest.fixture
def catalog_file(llama_catalog: dict[str, Any], tmp_path: Path, settings: Settings) -> Path:
    """The catalog file this deployment loads at start (what "revert to catalog" reads back)."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(llama_catalog))
    settings.CATALOG_FILE = str(path)
    catalog_load(path=path)
    return path


def _turbo() -> Endpoint:
    return Endpoint.objects.select_related("model").get(model__slug=LLAMA, tag="deepinfra/turbo")


def _form_data(admin_client: Client, url: str, **changes: Any) -> dict[str, Any]:
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    for key, value in list(data.items()):
        if isinstance(value, list | dict):
            data[key] = json.dumps(value)
        elif hasattr(value, "pk"):
            data[key] = value.pk
    data.update(changes)
    return data


def test_prices_are_shown_and_typed_in_usd_per_million_tokens(admin_client: Client, catalog_file: Path) -> None:
    ep = _turbo()
    assert (ep.prompt_nanos_per_mtok, ep.completion_nanos_per_mtok) == (100_000_000, 320_000_000)
    url = f"/admin/proxy/endpoint/{ep.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="prompt_usd_per_mtok"' in page and 'value="0.1"' in page and 'value="0.32"' in page
    assert 'name="prompt_nanos_per_mtok"' not in page  # nobody types nano-dollars
    listing = admin_client.get("/admin/proxy/endpoint/?q=turbo").content.decode()
    assert "$0.1" in listing and "$0.32" in listing

    response = admin_client.post(url, _form_data(admin_client, url, prompt_usd_per_mtok="0.125", image_usd="0.002"))
    assert response.status_code == 302, response.content.decode()[:3000]
    ep.refresh_from_db()
    assert (ep.prompt_nanos_per_mtok, ep.image_nanos, ep.completion_nanos_per_mtok) == (
        125_000_000,
        2_000_000,
        320_000_000,
    )


def test_it_refuses_a_price_finer_than_a_nano_dollar(admin_client: Client, catalog_file: Path) -> None:
    ep = _turbo()
    url = f"/admin/proxy/endpoint/{ep.pk}/change/"
    response = admin_client.post(url, _form_data(admin_client, url, prompt_usd_per_mtok="0.0000000001"))
    assert response.status_code == 200
    assert "decimal places" in response.content.decode()
    ep.refresh_from_db()
    assert ep.prompt_nanos_per_mtok == 100_000_000 and ep.overridden == []


def test_an_operators_price_survives_catalog_loads_until_reverted(
    admin_client: Client, catalog_file: Path, llama_catalog: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    ep = _turbo()
    url = f"/admin/proxy/endpoint/{ep.pk}/change/"
    assert admin_client.post(url, _form_data(admin_client, url, prompt_usd_per_mtok="0.5")).status_code == 302
    ep.refresh_from_db()
    assert ep.overridden == ["prompt_nanos_per_mtok"]

    # The next start loads a catalog whose prices moved: the override stays, the rest follows the file.
    moved = copy.deepcopy(llama_catalog)
    for entry in moved["models"][0]["endpoints"]:
        if entry["tag"] == "deepinfra/turbo":
            entry["pricing"]["prompt"] = 90_000_000
            entry["pricing"]["completion"] = 300_000_000
    catalog_file.write_text(json.dumps(moved))
    catalog_load(path=catalog_file)
    ep.refresh_from_db()
    assert (ep.prompt_nanos_per_mtok, ep.completion_nanos_per_mtok) == (500_000_000, 300_000_000)

    listing = admin_client.get("/admin/proxy/endpoint/?overridden=yes").content.decode()
    assert "override: prompt_nanos_per_mtok" in listing and "deepinfra/turbo" in listing
    assert (
        "groq"
        not in admin_client.get("/admin/proxy/endpoint/?overridden=yes&q=groq")
        .content.decode()
        .split("result-list")[-1]
        .split("</table>")[0]
    )

    version = catalog_version()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/proxy/endpoint/", {"action": "revert_to_catalog", "_selected_action": [ep.pk]}, follow=True
        )
    assert response.status_code == 200
    ep.refresh_from_db()
    assert (ep.prompt_nanos_per_mtok, ep.overridden) == (90_000_000, [])
    assert catalog_version() != version  # gateways rebuild their catalog snapshot


def test_a_models_edited_facts_survive_loads_and_revert(
    admin_client: Client, catalog_file: Path, llama_catalog: dict[str, Any]
) -> None:
    model = Model.objects.get(slug=LLAMA)
    original = model.name
    url = f"/admin/proxy/model/{model.pk}/change/"
    page = admin_client.get(url)
    data = _form_data(admin_client, url, name="Llama 3.3 70B (house)")
    # The inline formset of endpoints, posted back unchanged (prices in USD there too).
    formset = page.context["inline_admin_formsets"][0].formset
    data.update(
        {f"{formset.prefix}-{k}": v for k, v in formset.management_form.initial.items()}
        | {f"{formset.prefix}-TOTAL_FORMS": len(formset.forms), f"{formset.prefix}-INITIAL_FORMS": len(formset.forms)}
    )
    for i, form in enumerate(formset.forms):
        for key, value in form.initial.items():
            if value is not None and key in form.fields:
                data[f"{formset.prefix}-{i}-{key}"] = value.pk if hasattr(value, "pk") else value
        data[f"{formset.prefix}-{i}-id"] = form.instance.pk
        data[f"{formset.prefix}-{i}-model"] = model.pk
        if form.instance.tag == "deepinfra/turbo":
            data[f"{formset.prefix}-{i}-completion_usd_per_mtok"] = "0.4"
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    model.refresh_from_db()
    ep = _turbo()
    assert (model.name, model.overridden) == ("Llama 3.3 70B (house)", ["name"])
    assert (ep.completion_nanos_per_mtok, ep.overridden) == (400_000_000, ["completion_nanos_per_mtok"])
    others = Endpoint.objects.filter(model=model).exclude(tag="deepinfra/turbo")
    assert all(e.overridden == [] for e in others)  # untouched rows are not marked

    catalog_load(path=catalog_file)
    model.refresh_from_db()
    assert model.name == "Llama 3.3 70B (house)"
    assert _turbo().completion_nanos_per_mtok == 400_000_000

    admin_client.post("/admin/proxy/model/", {"action": "revert_to_catalog", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert (model.name, model.overridden) == (original, [])
