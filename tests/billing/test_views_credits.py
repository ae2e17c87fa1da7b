"""The Credits page at /o/<slug>/credits/."""

from __future__ import annotations

from django.test import Client

from billing.ledger import Leg, ledger_post
from billing.models import LedgerAccount, LedgerEntry
from billing.services import credits_grant
from organizations.services import IssuedKey
from tests.billing.api.support import make_generation
from tests.support import Triad


def _client_for(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_it_shows_balance_history_and_generations(api_key: IssuedKey, triad: Triad) -> None:
    credits_grant(organization=triad.org, amount_nanos=25_000_000_000, reason="Launch bonus")
    ledger_post(
        idempotency_key="usage:gen-page",
        kind=LedgerEntry.Kind.USAGE,
        organization=triad.org,
        legs=[
            Leg(LedgerAccount.Kind.ORG_CREDITS, -1_500_000_000, triad.org),
            Leg(LedgerAccount.Kind.USAGE_REVENUE, 1_500_000_000),
        ],
        memo="gen-page",
    )
    make_generation(triad.org, api_key.api_key, "gen-page", model="anthropic/claude-sonnet-4", cost_nanos=1_500_000_000)
    r = _client_for(triad.member).get(f"/o/{triad.org.slug}/credits/")
    assert r.status_code == 200
    html = r.content.decode()
    assert '<strong id="credits-balance">$23.50</strong>' in html
    assert "Launch bonus" in html and "+$25.00" in html and "\u2212$1.50" in html
    assert "anthropic/claude-sonnet-4" in html and "test key" in html
    assert "1 generation," in html


def test_it_shows_an_empty_organization(triad: Triad) -> None:
    html = _client_for(triad.owner).get(f"/o/{triad.org.slug}/credits/").content.decode()
    assert '<strong id="credits-balance">$0.00</strong>' in html
    assert "No credits yet." in html and "No generations yet." in html


def test_it_hides_the_page_from_outsiders(triad: Triad) -> None:
    credits_grant(organization=triad.org, amount_nanos=25_000_000_000, reason="secret memo")
    r = _client_for(triad.outsider).get(f"/o/{triad.org.slug}/credits/")
    assert r.status_code == 404
    assert b"secret memo" not in r.content


def test_it_asks_anonymous_visitors_to_sign_in(triad: Triad) -> None:
    r = Client().get(f"/o/{triad.org.slug}/credits/")
    assert r.status_code == 302 and "/login" in r["Location"]


def test_it_does_not_show_other_organizations_history(triad: Triad) -> None:
    credits_grant(organization=triad.outsider_org, amount_nanos=7_000_000_000, reason="their grant")
    html = _client_for(triad.owner).get(f"/o/{triad.org.slug}/credits/").content.decode()
    assert "their grant" not in html and "$7.00" not in html


def test_it_makes_the_page_organization_the_current_one(triad: Triad) -> None:
    client = _client_for(triad.member)
    session = client.session
    session["current_org"] = triad.outsider_org.slug  # left over from another visit
    session.save()
    client.get(f"/o/{triad.org.slug}/credits/")
    assert client.session["current_org"] == triad.org.slug
