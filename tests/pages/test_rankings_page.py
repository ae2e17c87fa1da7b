"""Public rankings: top models and apps by tokens across organizations, from the rollups, aggregates only, cached."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from analytics.models import UsageRollup
from analytics.rollup import rollup_run
from billing.models import Generation
from tests.support import Triad

pytestmark = pytest.mark.django_db


def gen(
    triad: Triad,
    n: int,
    *,
    model: str = "a/one",
    tokens: int = 100,
    outsider: bool = False,
    days_ago: float = 0,
    app_title: str = "",
    http_referer: str = "",
) -> None:
    Generation.objects.create(
        generation_id=f"gen-rank-{n}",
        organization=triad.outsider_org if outsider else triad.org,
        model=model,
        provider_slug="p",
        provider_name="P",
        tokens_prompt=tokens,
        app_title=app_title,
        http_referer=http_referer,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def roll_up() -> None:
    """Everything settled so far, rolled up (the rankings read nothing else)."""
    rollup_run(now=timezone.now() + timedelta(hours=2))


def test_it_ranks_models_and_apps_by_tokens_across_organizations(client: Client, triad: Triad) -> None:
    cache.clear()
    gen(triad, 1, model="a/one", tokens=300, app_title="Cool Chat")
    gen(triad, 2, model="b/two", tokens=500, outsider=True, http_referer="https://b.example/x")
    gen(triad, 3, model="a/one", tokens=400, outsider=True)
    gen(triad, 4, model="c/old", tokens=9_999, days_ago=10)  # outside the week
    roll_up()

    page = client.get("/rankings/")  # public: no sign-in
    assert page.status_code == 200
    assert [(r["label"], r["tokens"]) for r in page.context["models"]] == [("a/one", 700), ("b/two", 500)]
    assert [r["label"] for r in page.context["apps"]] == ["b.example", "Cool Chat"]
    html = page.content.decode()
    assert triad.org.name not in html and triad.outsider_org.name not in html  # no organization is named
    assert html.count("<h1") == 1 and "<title>Rankings ·" in html
    month = client.get("/rankings/", {"period": "month"}).context["models"]
    assert month[0]["label"] == "c/old"
    share = page.context["share"]
    assert len(share["labels"]) == 30
    assert sum(s["data"][-1] for s in share["series"]) == pytest.approx(100)


def test_it_serves_the_cached_aggregate_for_a_few_minutes(client: Client, triad: Triad) -> None:
    cache.clear()
    gen(triad, 1, model="a/one")
    roll_up()
    assert [r["label"] for r in client.get("/rankings/").context["models"]] == ["a/one"]
    gen(triad, 2, model="b/two", tokens=1_000)
    roll_up()
    assert [r["label"] for r in client.get("/rankings/").context["models"]] == ["a/one"]  # cached
    cache.clear()
    assert client.get("/rankings/").context["models"][0]["label"] == "b/two"


def test_it_reads_the_rollups_not_the_raw_generations(client: Client, triad: Triad) -> None:
    cache.clear()
    gen(triad, 1, model="a/one", tokens=300)
    assert client.get("/rankings/").context["models"] == []  # settled but not rolled up yet: not counted
    roll_up()
    cache.clear()
    assert [r["label"] for r in client.get("/rankings/").context["models"]] == ["a/one"]
    # Rewriting the rollup (never the raw row) changes the ranking: the rollup is the source.
    UsageRollup.objects.filter(model="a/one").update(model="z/renamed")
    cache.clear()
    assert [(r["label"], r["tokens"]) for r in client.get("/rankings/").context["models"]] == [("z/renamed", 300)]
    assert client.get("/rankings/", {"period": "day"}).context["models"][0]["label"] == "z/renamed"
