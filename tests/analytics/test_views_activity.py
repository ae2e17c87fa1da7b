from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import Generation
from organizations.models import Organization
from organizations.services import IssuedKey
from tests.support import Triad

pytestmark = pytest.mark.django_db


def gen(org: Organization, key: IssuedKey | None, n: int, *, model: str, cost: int, days_ago: float = 0) -> None:
    Generation.objects.create(
        generation_id=f"gen-{org.pk}-{model}-{n}",
        organization=org,
        api_key=key.api_key if key else None,
        model=model,
        provider_slug="p",
        provider_name="Prov",
        tokens_prompt=10,
        tokens_completion=5,
        cost_nanos=cost,
        latency_ms=100,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def client_for(user: object) -> Client:
    c = Client()
    c.force_login(user)  # type: ignore[arg-type]
    return c


def test_it_sums_spend_tokens_and_requests_for_the_range(triad: Triad, api_key: IssuedKey) -> None:
    gen(triad.org, api_key, 1, model="a/one", cost=1_000_000)
    gen(triad.org, api_key, 2, model="a/one", cost=2_000_000)
    gen(triad.org, api_key, 3, model="b/two", cost=500_000, days_ago=3)
    gen(triad.org, api_key, 4, model="b/two", cost=9_000_000, days_ago=20)  # outside 7d
    page = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/")
    assert page.status_code == 200
    ctx = page.context
    assert ctx["totals"].requests == 3
    assert ctx["totals"].spend_nanos == 3_500_000
    assert [(r["label"], r["requests"], r["spend_nanos"]) for r in ctx["grouped"]] == [
        ("a/one", 2, 3_000_000),
        ("b/two", 1, 500_000),
    ]
    month = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/?range=30d&group=key").context
    assert month["totals"].requests == 4
    assert [(r["label"], r["requests"]) for r in month["grouped"]] == [("test key", 4)]


def test_it_never_shows_another_organizations_generations(triad: Triad, api_key: IssuedKey) -> None:
    gen(triad.org, api_key, 1, model="mine/model", cost=1)
    gen(triad.outsider_org, None, 1, model="their/secret-model", cost=1)
    html = client_for(triad.owner).get(f"/o/{triad.org.slug}/activity/").content.decode()
    assert "mine/model" in html
    assert "their/secret-model" not in html


def test_it_answers_404_to_an_outsider(triad: Triad) -> None:
    assert client_for(triad.outsider).get(f"/o/{triad.org.slug}/activity/").status_code == 404


def test_it_falls_back_to_defaults_on_unknown_range_or_group(triad: Triad) -> None:
    ctx = client_for(triad.member).get(f"/o/{triad.org.slug}/activity/?range=forever&group=secret").context
    assert (ctx["range"], ctx["group"]) == ("7d", "model")
