"""The ledger snapshot the gate mirrors: credits in, version, purchases and settled usage."""

from __future__ import annotations

from billing.ledger import Leg, ledger_post
from billing.models import LedgerAccount
from billing.selectors import org_ledger_snapshot
from organizations.models import Organization
from tests.support import Triad

K = LedgerAccount.Kind


def post(org: Organization, key: str, kind: str, into_org: int, other: str) -> None:
    ledger_post(
        idempotency_key=key,
        kind=kind,
        organization=org,
        legs=[Leg(K.ORG_CREDITS, into_org, org), Leg(other, -into_org)],
    )


def test_it_splits_the_credit_account_into_credits_in_and_settled_usage(triad: Triad) -> None:
    org = triad.org
    post(org, "g", "grant", 5_000, K.GRANTS)
    post(org, "t", "topup", 10_000, K.PAYMENT_CLEARING)
    post(org, "r", "refund", -3_000, K.PAYMENT_CLEARING)
    post(org, "u1", "usage", -1_500, K.USAGE_REVENUE)
    post(org, "u2", "usage", -500, K.FEE_REVENUE)
    post(triad.outsider_org, "other", "grant", 99_000, K.GRANTS)  # another tenant's credit is not ours
    snap = org_ledger_snapshot(org.pk)
    assert (snap.credits_in_nanos, snap.version, snap.purchased_nanos, snap.settled_usage_nanos) == (
        12_000,
        3,
        10_000,
        2_000,
    )


def test_it_reads_an_organization_without_ledger_history_as_empty(triad: Triad) -> None:
    snap = org_ledger_snapshot(triad.org.pk)
    assert (snap.credits_in_nanos, snap.version, snap.purchased_nanos, snap.settled_usage_nanos) == (0, 0, 0, 0)
