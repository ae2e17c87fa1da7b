"""Re-read one chain's Transfer logs over a block range and settle what is found (an operator's repair).

Deposits found are recorded and credited by the usual rules (confirmations, receipt re-check),
each at most once by its log key; the chain's cursor does not move.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.payments.crypto import crypto_chains, crypto_scan_chain


class Command(BaseCommand):
    help = "Rescan a block range of one chain for USDC deposits: --chain 8453 --from 100 --to 200."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain", type=int, required=True, help="chain id: 1, 137 or 8453")
        parser.add_argument("--from", dest="from_block", type=int, required=True)
        parser.add_argument("--to", dest="to_block", type=int, required=True)

    def handle(self, *args: Any, chain: int, from_block: int, to_block: int, **options: Any) -> None:
        if chain not in crypto_chains():
            raise CommandError(f"Chain {chain} is not configured (RPC URL and CRYPTO_XPUB).")
        if from_block < 0 or to_block < from_block:
            raise CommandError("Give a range with 0 <= --from <= --to.")
        result = crypto_scan_chain(chain_id=chain, rescan=(from_block, to_block))
        if result.errors:
            raise CommandError("; ".join(result.errors))
        self.stdout.write(
            f"chain {chain}: blocks {result.from_block}..{result.to_block}: {result.seen} transfer(s) seen, "
            f"{result.credited} credited, {result.orphaned} orphaned"
        )
