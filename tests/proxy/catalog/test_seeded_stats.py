"""Published endpoint figures: the build takes them from the snapshot, the load stores them, the
admin lets staff (only) correct them, and /endpoints says which source each figure came from."""

from __future__ import annotations

import asyncio
import copy
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from proxy.catalog.published import published_stats
from proxy.catalog.services import catalog_load
from proxy.catalog.snapshot import catalog_bump_version
from proxy.health import get_health_store
from proxy.models import Endpoint

LLAMA = "meta-llama/llama-3.3-70b-instruct"
ENDPOINTS_URL = f"/api/v1/models/{LLAMA}/endpoints"


def _small(catalog: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(catalog)
    data["models"] = [m for m in data["models"] if m["record"]["id"] == LLAMA]
    return data


def test_a_snapshot_row_publishes_its_one_day_uptime_else_its_30_minute_one() -> None:
    row = {"uptime_1d": 96.00010495198447, "uptime_30m": 98.31614671713875, "latency_30m": None}
    assert published_stats(row) == {"uptime": "96.00"}
    assert published_stats({"uptime_1d": None, "uptime_30m": 99.995}) == {"uptime": "100.00"}
    assert published_stats({"uptime_1d": 100, "uptime_30m": None}) == {"uptime": "100.00"}
    assert published_stats({"uptime_1d": None, "uptime_30m": None, "latency_30m": None}) == {}
    # Today's snapshots carry no latency or throughput; OpenRouter's shapes are read when one does.
    assert published_stats({"latency_30m": {"p50": 412.6, "p90": 900}, "throughput_30m": 87.4}) == {
        "latency_ms": 413,
        "throughput_tps": 87,
    }


def test_the_build_publishes_the_snapshot_uptimes(built_catalog: dict[str, Any]) -> None:
    entry = next(m for m in built_catalog["models"] if m["record"]["id"] == LLAMA)
    by_tag = {e["tag"]: e for e in entry["endpoints"]}
    assert by_tag["deepinfra/turbo"]["published"] == {"uptime": "96.00"}
    assert by_tag["nebius/fp8"]["published"] == {"uptime": "46.62"}
    assert by_tag["together"]["published"] == {"uptime": "97.47"}  # no 30-minute figure: the 1-day one
    endpoints = [e for m in built_catalog["models"] for e in m["endpoints"]]
    # 1,088 rows publish an uptime; two tags appear twice and are one endpoint each.
    assert sum("published" in e for e in endpoints) == 1086
    assert not any("latency_ms" in e.get("published", {}) for e in endpoints)


def test_the_shipped_file_carries_them(shipped_catalog: dict[str, Any], built_catalog: dict[str, Any]) -> None:
    assert shipped_catalog["models"] == built_catalog["models"]


@pytest.mark.django_db
def test_the_load_stores_them_and_keeps_an_operators_figures(shipped_catalog: dict[str, Any]) -> None:
    data = _small(shipped_catalog)
    catalog_load(data=data)
    nebius = Endpoint.objects.get(model__slug=LLAMA, tag="nebius/fp8")
    assert nebius.published_uptime == Decimal("46.62")
    assert (nebius.published_latency_ms, nebius.published_throughput_tps) == (None, None)
    groq = Endpoint.objects.get(model__slug=LLAMA, tag="groq")
    groq.published_latency_ms, groq.overridden = 180, ["published_latency_ms"]  # as the admin marks it
    groq.save()
    for ep in next(m for m in data["models"] if m["record"]["id"] == LLAMA)["endpoints"]:
        if ep["tag"] == "nebius/fp8":
            ep["published"] = {"uptime": "99.10", "throughput_tps": 75}
    catalog_load(data=data)
    nebius.refresh_from_db()
    groq.refresh_from_db()
    assert (nebius.published_uptime, nebius.published_throughput_tps) == (Decimal("99.10"), 75)
    assert (groq.published_latency_ms, groq.published_uptime) == (180, Decimal("99.60"))


@pytest.mark.django_db
def test_only_staff_can_edit_the_published_figures(shipped_catalog: dict[str, Any], client: Client) -> None:
    catalog_load(data=_small(shipped_catalog))
    groq = Endpoint.objects.get(model__slug=LLAMA, tag="groq")
    url = f"/admin/proxy/endpoint/{groq.pk}/change/"
    outsider = get_user_model().objects.create_user(email="outsider@example.com", password="pw-outsider-1")
    for who in (None, outsider):
        if who is not None:
            client.force_login(who)
        assert client.get(url).status_code == 302  # to the admin login
        response = client.post(url, {"published_latency_ms": "1", "published_uptime": "100"})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    groq.refresh_from_db()
    assert (groq.published_latency_ms, groq.published_uptime) == (None, Decimal("99.60"))


@pytest.mark.django_db
def test_endpoints_report_where_each_figure_came_from(shipped_catalog: dict[str, Any], client: Client) -> None:
    catalog_load(data=_small(shipped_catalog))
    Endpoint.objects.filter(model__slug=LLAMA, tag="groq").update(published_latency_ms=180)
    Endpoint.objects.filter(model__slug=LLAMA, tag="together").update(published_uptime=None)
    groq = Endpoint.objects.get(model__slug=LLAMA, tag="groq")

    by_tag = {e["tag"]: e for e in client.get(ENDPOINTS_URL).json()["data"]["endpoints"]}
    fresh = by_tag["groq"]
    assert fresh["published_stats"] == {"uptime": 99.6, "latency": 180, "throughput": None}
    assert fresh["stats_source"]["uptime"] == "catalog"
    assert fresh["stats_source"]["latency"] == "catalog"
    assert fresh["stats_source"]["throughput"] is None
    # OpenRouter's own fields stay what this gateway measured: nothing yet.
    assert fresh["uptime_last_30m"] is None and fresh["latency_last_30m"] is None
    assert fresh["stats_source"]["uptime_last_30m"] is None
    assert by_tag["together"]["published_stats"]["uptime"] is None
    assert by_tag["together"]["stats_source"]["uptime"] is None

    async def traffic() -> None:
        store = get_health_store()
        for _ in range(3):
            await store.record(groq.pk, ok=True, latency_ms=400.0, ttft_ms=250.0, tokens=100, duration_ms=1250.0)
        await store.flush()

    asyncio.run(traffic())
    measured = next(e for e in client.get(ENDPOINTS_URL).json()["data"]["endpoints"] if e["tag"] == "groq")
    assert measured["stats_source"]["uptime"] == "measured"
    assert measured["stats_source"]["latency"] == "measured"
    assert measured["stats_source"]["throughput"] == "measured"
    assert measured["latency_last_30m"]["p50"] == 250.0
    assert measured["published_stats"]["latency"] == 180  # still shown beside the measured figure


@pytest.mark.django_db
def test_the_model_page_marks_published_figures(shipped_catalog: dict[str, Any], rf: Any) -> None:
    """The template's part: an endpoint whose figures come from the catalog shows them marked so
    (the page view hands each endpoint's `stats_source` and `published_stats` to the template)."""
    from django.contrib.auth.models import AnonymousUser
    from django.template.loader import render_to_string

    from proxy.models import Model

    catalog_load(data=_small(shipped_catalog))
    request = rf.get(f"/models/{LLAMA}")
    request.user = AnonymousUser()
    row = {"provider": "Groq", "tag": "groq", "context_length": 1, "prompt": "$1", "completion": "$1", "uptime": "-"}
    seeded = {
        **row,
        "latency": None,
        "throughput": None,
        "stats_source": {"uptime": "catalog", "latency": "catalog", "throughput": None},
        "published_stats": {"uptime": 99.6, "latency": 180, "throughput": None},
    }
    measured = {
        **row,
        "tag": "groq/measured",
        "uptime": "75.0%",
        "latency": {"p50": 250.0, "p75": 250.0, "p90": 250.0, "p99": 250.0},
        "throughput": {"p50": 87.0, "p75": 87.0, "p90": 87.0, "p99": 87.0},
        "stats_source": {"uptime": "measured", "latency": "measured", "throughput": "measured"},
        "published_stats": {"uptime": 99.6, "latency": 180, "throughput": None},
    }
    context = {"model": Model.objects.get(slug=LLAMA), "endpoints": [seeded, measured], "health": {}}
    html = render_to_string("pages/model.html", context, request=request)
    cells = html.split('id="endpoints-table"', 1)[1].split("</table>", 1)[0]
    seeded_row, measured_row = cells.split("<tr>")[2:4]
    assert "99.6% <span" in seeded_row and "180 ms <span" in seeded_row and seeded_row.count(">catalog<") == 2
    assert "75.0%" in measured_row and "250 ms" in measured_row and "87 tok/s" in measured_row
    assert ">catalog<" not in measured_row


@pytest.mark.django_db
def test_the_model_page_view_shows_the_published_figures(shipped_catalog: dict[str, Any], client: Client) -> None:
    """Through the view: before any traffic the page shows each endpoint's published figure, marked."""
    catalog_load(data=_small(shipped_catalog))
    Endpoint.objects.filter(model__slug=LLAMA, tag="groq").update(published_latency_ms=180)
    catalog_bump_version()
    html = client.get(f"/models/{LLAMA}/").content.decode()
    cells = html.split('id="endpoints-table"', 1)[1].split("</table>", 1)[0]
    groq = next(row for row in cells.split("<tr>") if ">groq<" in row or "groq</span>" in row)
    assert "180 ms <span" in groq and groq.count(">catalog<") == 2
