"""The Credits page's history: one line per day for usage, other entries on their own, paged by days."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.utils import timezone

from billing.ledger import Leg, ledger_post
from billing.models import LedgerAccount, LedgerEntry
from billing.selectors import HISTORY_DAYS_PER_PAGE
from billing.services import credits_grant
from tests.support import Triad


def _usage(triad: Triad, n: int, nanos: int, days_ago: int) -> None:
    entry, _ = ledger_post(
        idempotency_key=f"usage:hist-{triad.org.pk}-{n}",
        kind=LedgerEntry.Kind.USAGE,
        organization=triad.org,
        legs=[
            Leg(LedgerAccount.Kind.ORG_CREDITS, -nanos, triad.org),
            Leg(LedgerAccount.Kind.USAGE_REVENUE, nanos),
        ],
        memo=f"hist-{n}",
    )
    LedgerEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - timedelta(days=days_ago))


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_usage_is_one_line_a_day_and_pages_go_back_in_days(triad: Triad) -> None:
    credits_grant(organization=triad.org, amount_nanos=25_000_000_000, reason="Launch bonus")
    for n in range(30):
        _usage(triad, n, 100_000_000, days_ago=0)  # thirty requests today: one line
    _usage(triad, 99, 2_000_000_000, days_ago=HISTORY_DAYS_PER_PAGE + 2)  # on page 2
    credits_grant(organization=triad.outsider_org, amount_nanos=7_000_000_000, reason="Their bonus")

    url = f"/o/{triad.org.slug}/credits/"
    html = _client(triad.member).get(url).content.decode()
    assert "Launch bonus" in html and "+$25.00" in html
    assert "30 requests" in html and "\u2212$3.00" in html
    assert html.count("hist-") == 0  # usage memos are summed away, not listed per request
    assert "Their bonus" not in html and "$2.00" not in html
    assert "?history=2#history" in html and "?history=0" not in html

    older = _client(triad.member).get(url, {"history": "2"}).content.decode()
    assert "1 request" in older and "\u2212$2.00" in older
    assert "Launch bonus" not in older and "?history=1#history" in older and "?history=3" not in older
    assert _client(triad.member).get(url, {"history": "nope"}).status_code == 200  # junk is page 1
    assert _client(triad.outsider).get(url).status_code == 404
