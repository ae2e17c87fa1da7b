"""Credit writes that are not payments: operator grants and revocations."""

from __future__ import annotations

import uuid

from accounts.models import User
from billing.ledger import Leg, ledger_post
from billing.models import LedgerAccount, LedgerEntry
from organizations.audit import audit_record
from organizations.models import Organization

Kind = LedgerAccount.Kind


class CreditsError(Exception):
    pass


def credits_grant(
    *,
    organization: Organization,
    amount_nanos: int,
    reason: str,
    created_by: User | None = None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Give an organization credit from the platform's grants account."""
    if amount_nanos <= 0:
        raise CreditsError("A grant must be a positive amount.")
    if not reason.strip():
        raise CreditsError("A grant needs a reason.")
    entry, created = ledger_post(
        idempotency_key=idempotency_key or f"grant:{uuid.uuid4()}",
        kind=LedgerEntry.Kind.GRANT,
        organization=organization,
        legs=[Leg(Kind.ORG_CREDITS, amount_nanos, organization), Leg(Kind.GRANTS, -amount_nanos)],
        memo=reason.strip(),
        created_by=created_by,
    )
    if created:  # a repeated idempotency key changed nothing, so records nothing
        audit_record(
            organization=organization,
            action="credits.granted",
            target=reason.strip(),
            after={"amount_nanos": amount_nanos, "ledger_entry": entry.pk},
            actor=created_by,
        )
    return entry


def credits_revoke(
    *,
    organization: Organization,
    amount_nanos: int,
    reason: str,
    created_by: User | None = None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Take granted credit back. May drive the balance negative; then every request gets 402."""
    if amount_nanos <= 0:
        raise CreditsError("A revocation must be a positive amount.")
    if not reason.strip():
        raise CreditsError("A revocation needs a reason.")
    entry, created = ledger_post(
        idempotency_key=idempotency_key or f"revoke:{uuid.uuid4()}",
        kind=LedgerEntry.Kind.REVOKE,
        organization=organization,
        legs=[Leg(Kind.ORG_CREDITS, -amount_nanos, organization), Leg(Kind.GRANTS, amount_nanos)],
        memo=reason.strip(),
        created_by=created_by,
    )
    if created:  # a repeated idempotency key changed nothing, so records nothing
        audit_record(
            organization=organization,
            action="credits.revoked",
            target=reason.strip(),
            after={"amount_nanos": amount_nanos, "ledger_entry": entry.pk},
            actor=created_by,
        )
    return entry
