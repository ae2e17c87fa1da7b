"""USDC top-ups: deposit addresses, the chain scan, and crediting deposits once they are final.

A deposit credits amount A as: payment_clearing -A, org_credits +(A - fee), fee_revenue +fee
(fee = 5% of A, ceiled to the nano-dollar), keyed "crypto:<chain>:<tx>:<log_index>". A transfer
is recorded as pending when first seen and credited only when its block is `confirmations` deep
and still the block we saw.

A node's bad day must not cost a deposit, so:
- a deposit is orphaned only on evidence read successfully (the canonical block at its height has
  another hash, or its receipt shows it failed or moved); any RPC error leaves it as it was;
- a chain's cursor starts at a configured block or where the first deposit address was shown, and
  only moves past blocks whose logs were read, so an outage delays deposits but never skips them;
- logs are read in windows of at most CRYPTO_MAX_BLOCK_RANGE blocks, halved while the node refuses
  a window, and the reorg window behind the cursor is re-read separately, so the cursor always
  progresses whatever the confirmation count;
- each chain is scanned on its own (its own task, its own error boundary).
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
Status = CryptoDeposit.Status

CRYPTO_FEE_PERCENT = 5
SCAN_LOCK_SECONDS = 300
# New blocks read per scan, in windows: enough to catch up after an outage within a few scans.
WINDOWS_PER_SCAN = 10
# How long a smaller eth_getLogs window the node accepted is remembered before the full one is tried again.
SPAN_MEMORY_SECONDS = 600


class CryptoError(Exception):
    """Shown to the user as is."""


def crypto_configured() -> bool:
    return bool(settings.CRYPTO_XPUB)


def crypto_chains() -> dict[int, chain.ChainConfig]:
    return chain.chain_configs() if crypto_configured() else {}


def deposit_address_get_or_create(*, organization: Organization, chain_id: int) -> DepositAddress:
    """The organization's address on a chain. Index = organization id, so it is stable and unique.

    Showing a chain's first address fixes where its scan starts (unless a start block is
    configured), so a deposit to it can never be before the cursor.
    """
    if chain_id not in chain.CHAIN_NAMES:
        raise CryptoError("Unknown chain.")
    configs = crypto_chains()
    if chain_id not in configs:
        raise CryptoError(f"USDC on {chain.CHAIN_NAMES[chain_id]} is not configured.")
    existing = DepositAddress.objects.filter(organization=organization, chain_id=chain_id).first()
    if existing is not None:
        return existing
    _cursor_position_before_first_address(configs[chain_id])
    address = chain.deposit_address_derive(settings.CRYPTO_XPUB, organization.pk)
    address_row, _ = DepositAddress.objects.get_or_create(
        organization=organization,
        chain_id=chain_id,
        defaults={"address": address, "derivation_index": organization.pk},
    )
    return address_row


def _cursor_position_before_first_address(config: chain.ChainConfig) -> None:
    cursor, _ = ChainCursor.objects.get_or_create(chain_id=config.chain_id)
    if cursor.next_block is not None:
        return
    start = config.start_block
    if start is None:
        try:
            start = chain.chain_reader(config.chain_id).head()
        except chain.ChainUnavailable as exc:
            logger.warning("no deposit address on %s: %s", config.name, exc)
            raise CryptoError(f"{config.name} cannot be reached right now; try again in a few minutes.") from exc
    ChainCursor.objects.filter(pk=cursor.pk, next_block__isnull=True).update(next_block=start)


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
    """Every configured chain, each in its own error boundary: one failing node delays no other chain."""
    results = []
    for chain_id in crypto_chains():
        try:
            results.append(crypto_scan_chain(chain_id=chain_id))
        except Exception as exc:  # a bug or a database error on one chain must not stop the others
            logger.exception("crypto scan of chain %s crashed", chain_id)
            results.append(ScanResult(chain_id=chain_id, errors=[f"{type(exc).__name__}: {exc}"]))
    return results


def crypto_scan_chain(*, chain_id: int, rescan: tuple[int, int] | None = None) -> ScanResult:
    """Read new Transfer logs into pending deposits, then settle the pending ones.

    One scan per chain at a time (a Redis lock). `rescan=(from, to)` re-reads that block range
    instead (an operator's repair) without moving the cursor.
    """
    result = ScanResult(chain_id=chain_id)
    lock = f"billing:crypto-scan:{chain_id}"
    if not cache.add(lock, "1", timeout=SCAN_LOCK_SECONDS):
        result.errors.append("another scan is running")
        return result
    try:
        problems = chain.crypto_settings_problems()
        if problems:
            raise chain.CryptoConfigError(" ".join(problems))
        reader = chain.chain_reader(chain_id)
        head = reader.head()
        if rescan is not None:
            result.from_block, result.to_block = rescan[0], min(rescan[1], head)
            _read_range(reader, rescan[0], min(rescan[1], head), result)
        else:
            _scan_forward(reader, head, result)
        _settle(reader, head, result)
        _cursor_ok(chain_id, head)
    except (chain.ChainUnavailable, chain.CryptoConfigError) as exc:
        logger.warning("crypto scan of chain %s failed: %s", chain_id, exc)
        result.errors.append(str(exc))
        _cursor_error(chain_id, str(exc))
    finally:
        cache.delete(lock)
    return result


def _scan_forward(reader: chain.ChainReader, head: int, result: ScanResult) -> None:
    config = reader.config
    cursor, _ = ChainCursor.objects.get_or_create(chain_id=config.chain_id)
    if cursor.next_block is None:
        cursor.next_block = _first_block(config, head)
        ChainCursor.objects.filter(pk=cursor.pk, next_block__isnull=True).update(next_block=cursor.next_block)
    start = cursor.next_block
    # The reorg window behind the cursor, read again: a transfer a reorg moved is found at its new place.
    result.from_block = max(start - config.reorg_window, 0)
    _read_range(reader, result.from_block, start - 1, result)
    position, budget_end = start, start + config.max_block_range * WINDOWS_PER_SCAN
    while position <= head and position < budget_end:
        done = _read_window(reader, position, min(head, budget_end - 1), result)
        position = done + 1
        # Only past blocks whose logs were read and recorded: an error above leaves the cursor here.
        ChainCursor.objects.filter(pk=cursor.pk).update(next_block=position, updated_at=timezone.now())
    result.to_block = position - 1


def _first_block(config: chain.ChainConfig, head: int) -> int:
    if config.start_block is not None:
        return config.start_block
    if DepositAddress.objects.filter(chain_id=config.chain_id).exists():
        # Addresses were shown before any starting point was recorded: guessing "now" could skip deposits.
        raise chain.CryptoConfigError(
            f"{config.name} has deposit addresses but no start block: set {config.name.upper()}_START_BLOCK "
            "to a block before the first address was shown."
        )
    return head  # nobody has an address on this chain yet, so nothing before now can be a deposit


def _read_range(reader: chain.ChainReader, low: int, high: int, result: ScanResult) -> None:
    position = low
    while position <= high:
        position = _read_window(reader, position, high, result) + 1


def _read_window(reader: chain.ChainReader, low: int, high: int, result: ScanResult) -> int:
    """Record the logs of [low, low + span) within high; returns the last block read. Halves the span on refusal."""
    config = reader.config
    span_key = f"billing:crypto-span:{config.chain_id}"
    span = min(int(cache.get(span_key) or config.max_block_range), config.max_block_range)
    addresses = dict(DepositAddress.objects.filter(chain_id=config.chain_id).values_list("address", "id"))
    while True:
        end = min(high, low + span - 1)
        try:
            logs = reader.transfer_logs(low, end, addresses)
            break
        except chain.RangeRefused:
            if end == low:
                raise  # even one block is refused: the node is unwell, try again next scan
            span = max(1, (end - low + 1) // 2)
            cache.set(span_key, span, timeout=SPAN_MEMORY_SECONDS)
            logger.info("chain %s: eth_getLogs window shrunk to %s blocks", config.chain_id, span)
    for log in logs:
        _deposit_record(config.chain_id, log, addresses[log.to_address])
        result.seen += 1
    return end


def _cursor_ok(chain_id: int, head: int) -> None:
    now = timezone.now()
    ChainCursor.objects.filter(chain_id=chain_id).update(
        head_block=head, last_ok_at=now, last_error="", last_error_at=None, updated_at=now
    )


def _cursor_error(chain_id: int, message: str) -> None:
    now = timezone.now()
    cursor, _ = ChainCursor.objects.get_or_create(chain_id=chain_id)
    ChainCursor.objects.filter(pk=cursor.pk).update(last_error=message[:500], last_error_at=now, updated_at=now)


def _deposit_record(chain_id: int, log: chain.TransferLog, deposit_address_id: int) -> None:
    address = DepositAddress.objects.get(pk=deposit_address_id)
    below = log.amount_nanos < chain.min_deposit_nanos()
    open_status = Status.BELOW_MINIMUM if below else Status.PENDING
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
            "status": open_status,
        },
    )
    if created or deposit.status not in (Status.PENDING, Status.ORPHANED):
        return
    if deposit.block_hash != log.block_hash or deposit.status == Status.ORPHANED:
        # Seen again in the canonical chain (moved by a reorg, or back after one): count from there.
        CryptoDeposit.objects.filter(pk=deposit.pk, status__in=[Status.PENDING, Status.ORPHANED]).update(
            block_number=log.block_number, block_hash=log.block_hash, status=open_status, note=""
        )


def _orphan(deposit: CryptoDeposit, note: str, result: ScanResult) -> None:
    CryptoDeposit.objects.filter(pk=deposit.pk, status=Status.PENDING).update(
        status=Status.ORPHANED, confirmations=0, note=note[:500]
    )
    result.orphaned += 1


def _settle(reader: chain.ChainReader, head: int, result: ScanResult) -> None:
    needed = reader.config.confirmations
    pending = CryptoDeposit.objects.filter(chain_id=reader.config.chain_id, status=Status.PENDING)
    for deposit in pending.select_related("deposit_address"):
        if deposit.block_number > head:
            continue  # the chain is shorter than it was (a reorg in progress): wait for it to grow back
        try:
            canonical = reader.block_hash(deposit.block_number)
            if canonical is None:
                continue  # this node has not got that block (yet): no evidence either way
            if canonical != deposit.block_hash:
                _orphan(deposit, f"block {deposit.block_number} is now {canonical}", result)
                continue
            confirmations = head - deposit.block_number + 1
            if confirmations < needed:
                CryptoDeposit.objects.filter(pk=deposit.pk).update(confirmations=confirmations)
                continue
            key = (deposit.tx_hash, deposit.log_index)
            check = reader.transfer_check(key, deposit.block_hash, deposit.deposit_address.address)
        except chain.ChainUnavailable as exc:
            # No answer is not evidence: the deposit stays pending and the next scan asks again.
            result.errors.append(str(exc))
            continue
        if check == "gone":
            _orphan(deposit, "the receipt shows the transfer failed or moved", result)
        elif check == "ok" and crypto_deposit_credit(deposit_id=deposit.pk, confirmations=confirmations):
            result.credited += 1


def crypto_deposit_credit(
    *, deposit_id: int, confirmations: int, allowed: tuple[str, ...] = (Status.PENDING,), note: str = ""
) -> bool:
    """Credit a deposit with its ledger entry, in one transaction. False if its status is not `allowed`."""
    with transaction.atomic():
        deposit = CryptoDeposit.objects.select_for_update().select_related("organization").get(pk=deposit_id)
        if deposit.status not in allowed:
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
        deposit.status, deposit.fee_nanos = Status.CREDITED, fee
        deposit.credit_nanos, deposit.confirmations = deposit.amount_nanos - fee, confirmations
        deposit.credited_at = timezone.now()
        deposit.note = note[:500] or deposit.note
        deposit.save(update_fields=["status", "fee_nanos", "credit_nanos", "confirmations", "credited_at", "note"])
    return True


# --- operator actions (admin) ------------------------------------------------------------------

NEEDS_OPERATOR = (Status.BELOW_MINIMUM, Status.ORPHANED, Status.DISMISSED, Status.PENDING)


def crypto_deposit_credit_by_operator(*, deposit_id: int, actor: str) -> bool:
    """Book a deposit an operator has checked on an explorer as the payment it is (never as a grant)."""
    return crypto_deposit_credit(
        deposit_id=deposit_id, confirmations=0, allowed=NEEDS_OPERATOR, note=f"credited as a payment by {actor}"
    )


def crypto_deposit_dismiss(*, deposit_id: int, actor: str) -> bool:
    return bool(
        CryptoDeposit.objects.filter(pk=deposit_id, status__in=[Status.BELOW_MINIMUM, Status.ORPHANED]).update(
            status=Status.DISMISSED, note=f"dismissed by {actor}"
        )
    )


def crypto_deposit_recheck(*, deposit_id: int, actor: str) -> bool:
    """Back to pending: the next scan re-reads its block and receipt and credits or orphans it on evidence."""
    return bool(
        CryptoDeposit.objects.filter(pk=deposit_id, status__in=[Status.ORPHANED, Status.DISMISSED]).update(
            status=Status.PENDING, note=f"re-check asked by {actor}"
        )
    )
