"""`/` for a signed-out visitor: a landing page linking the catalog, the rankings and sign-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from analytics.rollup import rollup_run
from billing.models import Generation
from tests.support import Triad

pytestmark = pytest.mark.django_db


def test_signed_out_visitors_get_the_landing_page(triad: Triad) -> None:
    cache.clear()
    Generation.objects.create(
        generation_id="g-landing",
        organization=triad.org,
        model="anthropic/claude-sonnet-4",
        provider_slug="anthropic",
        provider_name="Anthropic",
        tokens_prompt=100,
        tokens_completion=20,
        created_at=timezone.now() - timedelta(hours=1),
    )
    rollup_run(now=timezone.now() + timedelta(hours=2))  # the rankings (and so this page) read the rollups
    response = Client().get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<h1") == 1 and "<title>One API for many models" in html
    for link in ('href="/models/"', 'href="/rankings/"', 'href="/accounts/signup/"', 'href="/accounts/login/"'):
        assert link in html, link
    assert "anthropic/claude-sonnet-4" in html and "120 tokens" in html  # the week's top models, aggregated
    assert "Acme" not in html  # no organization is named


def test_signed_in_users_still_go_to_their_keys(triad: Triad) -> None:
    client = Client()
    client.force_login(triad.member)
    assert client.get("/")["Location"] == f"/o/{triad.org.slug}/keys/"
