"""USDC top-ups: deposit addresses, the chain scan, and crediting deposits once they are final.

A deposit credits amount A as: payment_clearing -A, org_credits +(A - fee), fee_revenue +fee
(fee = 5% of A, ceiled to the nano-dollar), keyed "crypto:<chain>:<tx>:<log_index>". A transfer
is recorded as pending when first seen and credited only when its block is `confirmations` deep
and still the block we saw; a reorg that drops it before then leaves it orphaned and uncredited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from billing.ledger import Leg, ledger_post
from billing.models import ChainCursor, CryptoDeposit, DepositAddress, LedgerAccount, LedgerEntry
from billing.payments import chain
from common.money import fee_nanos
from organizations.models import Organization

logger = logging.getLogger(__name__)
Kind = LedgerAccount.Kind

CRYPTO_FEE_PERCENT = 5
SCAN_LOCK_SECONDS = 300


class CryptoError(Exception):
    """Shown to the user as is."""


def crypto_configured() -> bool:
    return bool(settings.CRYPTO_XPUB)


def crypto_chains() -> dict[int, chain.ChainConfig]:
    return chain.chain_configs() if crypto_configured() else {}


def deposit_address_get_or_create(*, organization: Organization, chain_id: int) -> DepositAddress:
    """The organization's address on a chain. Index = organization id, so it is stable and unique."""
    if chain_id not in chain.CHAIN_NAMES:
        raise CryptoError("Unknown chain.")
    if chain_id not in crypto_chains():
        raise CryptoError(f"USDC on {chain.CHAIN_NAMES[chain_id]} is not configured.")
    existing = DepositAddress.objects.filter(organization=organization, chain_id=chain_id).first()
    if existing is not None:
        return existing
    address = chain.deposit_address_derive(settings.CRYPTO_XPUB, organization.pk)
    address_row, _ = DepositAddress.objects.get_or_create(
        organization=organization,
        chain_id=chain_id,
        defaults={"address": address, "derivation_index": organization.pk},
    )
    return address_row


@dataclass
class ScanResult:
    chain_id: int
    from_block: int = 0
    to_block: int = -1
    seen: int = 0
    credited: int = 0
    orphaned: int = 0
    errors: list[str] = field(default_factory=list)


def crypto_scan_all() -> list[ScanResult]:
    return [crypto_scan_chain(chain_id=cid) for cid in crypto_chains()]


def crypto_scan_chain(*, chain_id: int) -> ScanResult:
    """Read new Transfer logs into pending deposits, then settle the pending ones.

    One scan per chain at a time (a Redis lock); each scan re-reads the last `confirmations`
    blocks so a transfer moved by a reorg is found again at its new place.
    """
    result = ScanResult(chain_id=chain_id)
    lock = f"billing:crypto-scan:{chain_id}"
    if not cache.add(lock, "1", timeout=SCAN_LOCK_SECONDS):
        result.errors.append("another scan is running")
        return result
    try:
        reader = chain.chain_reader(chain_id)
        head = reader.head()
        cursor, _ = ChainCursor.objects.get_or_create(
            chain_id=chain_id, defaults={"next_block": _first_block(reader.config, head)}
        )
        result.from_block = max(cursor.next_block - reader.config.reorg_window, 0)
        result.to_block = min(head, result.from_block + reader.config.max_block_range - 1)
        addresses = dict(DepositAddress.objects.filter(chain_id=chain_id).values_list("address", "id"))
        for log in reader.transfer_logs(result.from_block, result.to_block, addresses):
            _deposit_record(chain_id, log, addresses[log.to_address])
            result.seen += 1
        ChainCursor.objects.filter(pk=cursor.pk).update(
            next_block=max(cursor.next_block, result.to_block + 1), head_block=head
        )
        _settle(reader, head, result)
    except (chain.ChainUnavailable, chain.CryptoConfigError) as exc:
        logger.warning("crypto scan of chain %s failed: %s", chain_id, exc)
        result.errors.append(str(exc))
    finally:
        cache.delete(lock)
    return result


def _first_block(config: chain.ChainConfig, head: int) -> int:
    return config.start_block if config.start_block is not None else head


def _deposit_record(chain_id: int, log: chain.TransferLog, deposit_address_id: int) -> None:
    address = DepositAddress.objects.get(pk=deposit_address_id)
    below = log.amount_nanos < chain.min_deposit_nanos()
    deposit, created = CryptoDeposit.objects.get_or_create(
        chain_id=chain_id,
        tx_hash=log.tx_hash,
        log_index=log.log_index,
        defaults={
            "organization_id": address.organization_id,
            "deposit_address": address,
            "block_number": log.block_number,
            "block_hash": log.block_hash,
            "token_address": log.token,
            "from_address": log.from_address,
            "amount_nanos": log.amount_nanos,
            "status": CryptoDeposit.Status.BELOW_MINIMUM if below else CryptoDeposit.Status.PENDING,
        },
    )
    if created or deposit.status == CryptoDeposit.Status.CREDITED:
        return
    if deposit.block_hash != log.block_hash:
        # Same log key in another block: a reorg re-included it. Start counting again from there.
        CryptoDeposit.objects.filter(pk=deposit.pk, status__in=_OPEN).update(
            block_number=log.block_number,
            block_hash=log.block_hash,
            status=CryptoDeposit.Status.PENDING if not below else CryptoDeposit.Status.BELOW_MINIMUM,
        )


_OPEN = [CryptoDeposit.Status.PENDING, CryptoDeposit.Status.ORPHANED]


def _settle(reader: chain.ChainReader, head: int, result: ScanResult) -> None:
    needed = reader.config.confirmations
    for deposit in CryptoDeposit.objects.filter(chain_id=reader.config.chain_id, status=CryptoDeposit.Status.PENDING):
        if deposit.block_number > head:
            continue  # the chain is shorter than it was (a reorg in progress): wait for it to grow back
        if reader.block_hash(deposit.block_number) != deposit.block_hash:
            CryptoDeposit.objects.filter(pk=deposit.pk, status=CryptoDeposit.Status.PENDING).update(
                status=CryptoDeposit.Status.ORPHANED, confirmations=0
            )
            result.orphaned += 1
            continue
        confirmations = head - deposit.block_number + 1
        if confirmations < needed:
            CryptoDeposit.objects.filter(pk=deposit.pk).update(confirmations=confirmations)
            continue
        key = (deposit.tx_hash, deposit.log_index)
        if not reader.transfer_still_there(key, deposit.block_hash, deposit.deposit_address.address):
            CryptoDeposit.objects.filter(pk=deposit.pk, status=CryptoDeposit.Status.PENDING).update(
                status=CryptoDeposit.Status.ORPHANED, confirmations=0
            )
            result.orphaned += 1
            continue
        if crypto_deposit_credit(deposit_id=deposit.pk, confirmations=confirmations):
            result.credited += 1


def crypto_deposit_credit(*, deposit_id: int, confirmations: int) -> bool:
    """pending -> credited with its ledger entry, in one transaction. False if it was not pending."""
    with transaction.atomic():
        deposit = CryptoDeposit.objects.select_for_update().select_related("organization").get(pk=deposit_id)
        if deposit.status != CryptoDeposit.Status.PENDING:
            return False
        fee = fee_nanos(deposit.amount_nanos, CRYPTO_FEE_PERCENT)
        org = deposit.organization
        ledger_post(
            idempotency_key=f"crypto:{deposit.chain_id}:{deposit.tx_hash}:{deposit.log_index}",
            kind=LedgerEntry.Kind.TOPUP,
            organization=org,
            legs=[
                Leg(Kind.PAYMENT_CLEARING, -deposit.amount_nanos),
                Leg(Kind.ORG_CREDITS, deposit.amount_nanos - fee, org),
                Leg(Kind.FEE_REVENUE, fee),
            ],
            memo=f"USDC deposit on chain {deposit.chain_id}, tx {deposit.tx_hash}",
        )
        deposit.status, deposit.fee_nanos = CryptoDeposit.Status.CREDITED, fee
        deposit.credit_nanos, deposit.confirmations = deposit.amount_nanos - fee, confirmations
        deposit.credited_at = timezone.now()
        deposit.save(update_fields=["status", "fee_nanos", "credit_nanos", "confirmations", "credited_at"])
    return True
