"""The ledger's one write path. Everything that moves money calls `ledger_post`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F, Sum

from accounts.models import User
from billing.models import LedgerAccount, LedgerEntry, Posting
from organizations.models import Organization


class LedgerError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of an entry: an account kind (for the org, or the platform when org is None) and a signed amount."""

    kind: str
    amount_nanos: int
    organization: Organization | None = None


# Called with an organization's id after a commit that moved its credits (anything but usage).
_credit_listeners: list[Callable[[int], None]] = []


def on_credits_changed(listener: Callable[[int], None]) -> None:
    """Subscribe to credit changes. The credit gate (above the ledger) mirrors each organization's
    credits and subscribes in billing.apps; usage entries are the gate's own charges, counted at
    finish(), so they do not notify."""
    if listener not in _credit_listeners:
        _credit_listeners.append(listener)


def _credits_changed(org_id: int) -> None:
    for listener in _credit_listeners:
        listener(org_id)


def account_for(kind: str, organization: Organization | None) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(kind=kind, organization=organization)
    return account


def ledger_post(
    *,
    idempotency_key: str,
    kind: str,
    organization: Organization | None,
    legs: Sequence[Leg],
    memo: str = "",
    created_by: User | None = None,
) -> tuple[LedgerEntry, bool]:
    """Post one balanced entry exactly once. Returns (entry, created).

    A second call with the same idempotency key returns the first entry and changes nothing, so
    webhook redeliveries and settlement retries are safe. Accounts are locked in id order (no
    deadlocks between concurrent posts) and their cached balances move in the same transaction.
    """
    _check_legs(legs)
    existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            entry = LedgerEntry.objects.create(
                idempotency_key=idempotency_key, kind=kind, organization=organization, memo=memo, created_by=created_by
            )
            accounts = [account_for(leg.kind, leg.organization) for leg in legs]
            locked = {
                a.pk: a
                for a in LedgerAccount.objects.select_for_update()
                .filter(pk__in=[a.pk for a in accounts])
                .order_by("pk")
            }
            Posting.objects.bulk_create(
                Posting(entry=entry, account=locked[acc.pk], amount_nanos=leg.amount_nanos)
                for acc, leg in zip(accounts, legs, strict=True)
            )
            for acc, leg in zip(accounts, legs, strict=True):
                LedgerAccount.objects.filter(pk=acc.pk).update(balance_nanos=F("balance_nanos") + leg.amount_nanos)
    except IntegrityError:
        # A concurrent post with the same key won the race; theirs is the one entry.
        existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
    if organization is not None and kind != LedgerEntry.Kind.USAGE:
        transaction.on_commit(functools.partial(_credits_changed, organization.pk), robust=True)
    return entry, True


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """One entry for `ledger_post_many`, with the same meaning as `ledger_post`'s arguments."""

    idempotency_key: str
    kind: str
    organization: Organization | None
    legs: Sequence[Leg]
    memo: str = ""


def _check_legs(legs: Sequence[Leg]) -> None:
    if not legs or sum(leg.amount_nanos for leg in legs) != 0:
        raise LedgerError("An entry's postings must sum to zero.")
    if any(not isinstance(leg.amount_nanos, int) or isinstance(leg.amount_nanos, bool) for leg in legs):
        raise LedgerError("Amounts are integer nano-dollars.")


def ledger_post_many(specs: Sequence[EntrySpec]) -> int:
    """Post a batch of entries, each exactly once, moving each account's cached balance once.

    For settlement: `ledger_post` in a loop inside one transaction updates the same revenue row
    once per entry, and PostgreSQL then walks an ever longer chain of row versions (quadratic in
    the batch). Accounts are locked first, in id order, so a concurrent batch with the same keys
    waits and then sees them as existing. Returns how many entries were new.
    """
    for spec in specs:
        _check_legs(spec.legs)
    if not specs:
        return 0
    with transaction.atomic():
        accounts: dict[tuple[str, int | None], LedgerAccount] = {}
        for spec in specs:
            for leg in spec.legs:
                ref = (leg.kind, leg.organization.pk if leg.organization else None)
                if ref not in accounts:
                    accounts[ref] = account_for(leg.kind, leg.organization)
        ids = sorted(a.pk for a in accounts.values())
        list(LedgerAccount.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
        existing = set(
            LedgerEntry.objects.filter(idempotency_key__in=[s.idempotency_key for s in specs]).values_list(
                "idempotency_key", flat=True
            )
        )
        fresh = list({s.idempotency_key: s for s in reversed(specs) if s.idempotency_key not in existing}.values())
        entries = LedgerEntry.objects.bulk_create(
            LedgerEntry(idempotency_key=s.idempotency_key, kind=s.kind, organization=s.organization, memo=s.memo)
            for s in fresh
        )
        deltas: dict[int, int] = {}
        postings = []
        for entry, spec in zip(entries, fresh, strict=True):
            for leg in spec.legs:
                account = accounts[(leg.kind, leg.organization.pk if leg.organization else None)]
                postings.append(Posting(entry=entry, account=account, amount_nanos=leg.amount_nanos))
                deltas[account.pk] = deltas.get(account.pk, 0) + leg.amount_nanos
        Posting.objects.bulk_create(postings)
        for pk in sorted(deltas):
            LedgerAccount.objects.filter(pk=pk).update(balance_nanos=F("balance_nanos") + deltas[pk])
        for org_id in {s.organization.pk for s in fresh if s.organization and s.kind != LedgerEntry.Kind.USAGE}:
            transaction.on_commit(functools.partial(_credits_changed, org_id), robust=True)
    return len(fresh)


def org_balance_nanos(organization: Organization) -> int:
    """The settled balance (cached on the org's credit account)."""
    acc = LedgerAccount.objects.filter(kind=LedgerAccount.Kind.ORG_CREDITS, organization=organization).first()
    return acc.balance_nanos if acc else 0


@dataclass(frozen=True, slots=True)
class Discrepancy:
    account: LedgerAccount
    cached_nanos: int
    computed_nanos: int


def ledger_discrepancies() -> tuple[list[Discrepancy], list[LedgerEntry]]:
    """Accounts whose cached balance differs from their postings, and entries that do not sum to zero."""
    sums = dict(Posting.objects.values_list("account_id").annotate(total=Sum("amount_nanos")).order_by())
    bad_accounts = [
        Discrepancy(account=acc, cached_nanos=acc.balance_nanos, computed_nanos=sums.get(acc.pk) or 0)
        for acc in LedgerAccount.objects.select_related("organization").order_by("pk")
        if acc.balance_nanos != (sums.get(acc.pk) or 0)
    ]
    unbalanced_ids = (
        Posting.objects.values("entry_id")
        .annotate(total=Sum("amount_nanos"))
        .exclude(total=0)
        .values_list("entry_id", flat=True)
    )
    return bad_accounts, list(LedgerEntry.objects.filter(pk__in=list(unbalanced_ids)))
