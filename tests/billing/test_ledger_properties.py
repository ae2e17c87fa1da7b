"""Property tests (hypothesis) on pricing, the ledger and the gate+settlement round trip."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.gate import RedisGate
from billing.ledger import (
    EntrySpec,
    LedgerError,
    Leg,
    ledger_discrepancies,
    ledger_post,
    ledger_post_many,
    org_balance_nanos,
)
from billing.models import LedgerAccount, LedgerEntry, Posting
from billing.pricing import PriceCard, Usage, cost_nanos, worst_case_nanos
from billing.settlement import settle_pending
from common.money import fee_nanos
from organizations.models import Organization
from organizations.services import IssuedKey
from tests.billing.support import event, key_state
from tests.support import Triad

K = LedgerAccount.Kind
DB_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
price = st.integers(min_value=0, max_value=100_000_000_000)  # up to $100 per million tokens


@given(
    prompt=price,
    completion=price,
    cache_discount=st.integers(0, 100),
    reasoning=st.one_of(st.none(), price),
    request=st.integers(0, 10_000_000),
    prompt_tokens=st.integers(0, 2_000_000),
    max_tokens=st.integers(0, 200_000),
    data=st.data(),
)
def test_it_never_charges_more_than_the_reserved_worst_case(
    prompt: int,
    completion: int,
    cache_discount: int,
    reasoning: int | None,
    request: int,
    prompt_tokens: int,
    max_tokens: int,
    data: st.DataObject,
) -> None:
    card = PriceCard(
        prompt=prompt,
        completion=completion,
        cache_read=prompt * cache_discount // 100,
        reasoning=reasoning,
        request=request,
    )
    completion_tokens = data.draw(st.integers(0, max_tokens))
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=data.draw(st.integers(0, prompt_tokens)),
        reasoning_tokens=data.draw(st.integers(0, completion_tokens)),
    )
    charged = cost_nanos(usage, card)
    assert 0 <= charged <= worst_case_nanos(prompt_tokens=prompt_tokens, max_completion_tokens=max_tokens, price=card)
    assert isinstance(charged, int)


@given(amount=st.integers(0, 10**15), percent=st.integers(0, 100))
def test_it_ceils_fees_to_the_nano_dollar_exactly(amount: int, percent: int) -> None:
    fee = fee_nanos(amount, percent)
    assert fee == -(-amount * percent // 100)
    assert 0 <= fee <= amount


@given(legs=st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=4))
@DB_SETTINGS
def test_it_refuses_entries_that_do_not_sum_to_zero(triad: Triad, legs: list[int]) -> None:
    before = LedgerEntry.objects.count()
    kinds = [K.ORG_CREDITS, K.GRANTS, K.USAGE_REVENUE, K.FEE_REVENUE]
    built = [Leg(kinds[i], amount, triad.org if i == 0 else None) for i, amount in enumerate(legs)]
    if sum(legs) != 0:
        with pytest.raises(LedgerError):
            ledger_post(idempotency_key=f"p:{uuid.uuid4()}", kind="adjustment", organization=triad.org, legs=built)
        assert LedgerEntry.objects.count() == before
    else:
        ledger_post(idempotency_key=f"p:{uuid.uuid4()}", kind="adjustment", organization=triad.org, legs=built)
        assert LedgerEntry.objects.count() == before + 1


operation = st.tuples(
    st.sampled_from(["grant", "revoke", "usage", "topup", "byok_fee"]),
    st.integers(0, 2),  # which organization
    st.integers(1, 10**12),
)
PLATFORM_SIDE = {"grant": K.GRANTS, "revoke": K.GRANTS, "usage": K.USAGE_REVENUE, "topup": K.PAYMENT_CLEARING}


def _legs(op: str, org: Organization, amount: int) -> list[Leg]:
    into_org = amount if op in ("grant", "topup") else -amount
    platform = PLATFORM_SIDE.get(op, K.FEE_REVENUE)
    return [Leg(K.ORG_CREDITS, into_org, org), Leg(platform, -into_org)]


@given(ops=st.lists(operation, min_size=1, max_size=12), batched=st.booleans())
@DB_SETTINGS
def test_it_keeps_every_balance_equal_to_its_postings_and_replays_change_nothing(
    triad: Triad, ops: list[tuple[str, int, int]], batched: bool
) -> None:
    orgs = [triad.org, triad.outsider_org, triad.org]
    run_id = uuid.uuid4().hex
    kinds = {"byok_fee": "usage", "grant": "grant", "revoke": "revoke", "usage": "usage", "topup": "topup"}

    def post_all() -> None:
        if batched:  # the settlement path: one transaction, each account moved once
            specs = [
                EntrySpec(f"{run_id}:{i}", kinds[op], orgs[which], _legs(op, orgs[which], amount))
                for i, (op, which, amount) in enumerate(ops)
            ]
            ledger_post_many(specs + specs[:1])  # a duplicate inside the batch is posted once
            return
        for i, (op, which, amount) in enumerate(ops):
            org = orgs[which]
            ledger_post(idempotency_key=f"{run_id}:{i}", kind=kinds[op], organization=org, legs=_legs(op, org, amount))

    post_all()
    snapshot = dict(LedgerAccount.objects.values_list("pk", "balance_nanos"))
    entries = LedgerEntry.objects.count()
    post_all()  # an idempotent replay: webhook redelivery, settlement retry
    assert dict(LedgerAccount.objects.values_list("pk", "balance_nanos")) == snapshot
    assert LedgerEntry.objects.count() == entries
    assert ledger_discrepancies() == ([], [])
    assert Posting.objects.aggregate(total=Sum("amount_nanos"))["total"] == 0
    assert LedgerEntry.objects.filter(idempotency_key__startswith=run_id).count() == len(ops)
    for org in (triad.org, triad.outsider_org):
        postings = Posting.objects.filter(account__kind=K.ORG_CREDITS, account__organization=org)
        assert org_balance_nanos(org) == (postings.aggregate(t=Sum("amount_nanos"))["t"] or 0)


request = st.tuples(st.integers(1, 10**9), st.integers(0, 100), st.booleans())


@given(requests=st.lists(request, min_size=1, max_size=15), credit=st.integers(0, 5 * 10**9))
@DB_SETTINGS
def test_it_spends_at_most_the_credit_and_settles_to_the_same_numbers(
    triad: Triad, api_key: IssuedKey, requests: list[tuple[int, int, bool]], credit: int
) -> None:
    gate = RedisGate(django_settings.REDIS_URL)
    gate.sync.flushdb()  # hypothesis runs many examples inside one test
    org = Organization.objects.create(name="p", slug=f"p-{uuid.uuid4().hex[:12]}")
    issued_key = api_key.api_key
    issued_key.organization = org
    issued_key.save()
    if credit:
        ledger_post(
            idempotency_key=f"g:{uuid.uuid4()}",
            kind="grant",
            organization=org,
            legs=[Leg(K.ORG_CREDITS, credit, org), Leg(K.GRANTS, -credit)],
        )
    key = key_state(api_key)
    spent = 0
    for i, (worst, percent, byok) in enumerate(requests):
        ok = async_to_sync(gate.admit)(reservation_id=f"r{i}", key=key, amount_nanos=worst, is_free=False, is_byok=byok)
        if ok.ok:
            ev = event(key, worst * percent // 100, is_byok=byok)
            spent += async_to_sync(gate.finish)(reservation_id=f"r{i}", key=key, event=ev)
    assert spent <= credit
    settle_pending(gate.queue())
    assert org_balance_nanos(org) == credit - spent
    assert gate.org_credit_view(org.pk) == {
        "credits": credit,
        "spent": spent,
        "reserved": 0,
        "unsettled": 0,
        "purchased": 0,
    }
