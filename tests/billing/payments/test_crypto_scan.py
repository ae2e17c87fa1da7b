"""USDC deposits on an in-process chain (eth-tester + py-evm) scanned by the real task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from billing.ledger import org_balance_nanos
from billing.models import CryptoDeposit, DepositAddress, LedgerAccount, LedgerEntry
from billing.payments import chain
from billing.payments.crypto import CryptoError, crypto_scan_chain, deposit_address_get_or_create
from billing.payments.tasks import crypto_scan_chain_task
from common.money import usd_to_nanos
from tests.billing.payments.support import FIXTURES
from tests.support import Triad

BASE = 8453
TESTER_CHAIN_ID = 131277322940537
CONFIRMATIONS = 3
# Any valid xpub works: the server only ever sees public keys. This one is the BIP32 test vector 1 master.
XPUB = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"


@dataclass
class Chain:
    w3: Web3
    usdc: Any
    lookalike: Any
    payer: str


def _deploy(w3: Web3, owner: str) -> Any:
    compiled = json.loads((FIXTURES / "token" / "TestUSDC.json").read_text())
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": owner}))
    return w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])


@pytest.fixture(scope="session")
def _session_chain() -> Chain:
    w3 = Web3(EthereumTesterProvider())
    owner = w3.eth.accounts[0]
    usdc, lookalike = _deploy(w3, owner), _deploy(w3, owner)
    for token in (usdc, lookalike):
        token.functions.mint(owner, 10**15).transact({"from": owner})
    return Chain(w3=w3, usdc=usdc, lookalike=lookalike, payer=owner)


@pytest.fixture
def evm(_session_chain: Chain, settings: Any) -> Iterator[Chain]:
    """A fresh view of the session chain (snapshot/revert), wired in as Base with 3-block finality."""
    tester = _session_chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    snapshot = tester.take_snapshot()
    settings.CRYPTO_XPUB = XPUB
    settings.CRYPTO_RPC_URLS = {}
    settings.CRYPTO_RPC_CHAIN_IDS = {**settings.CRYPTO_RPC_CHAIN_IDS, BASE: TESTER_CHAIN_ID}
    settings.CRYPTO_TOKENS = {BASE: [_session_chain.usdc.address]}
    settings.CRYPTO_CONFIRMATIONS = {**settings.CRYPTO_CONFIRMATIONS, BASE: CONFIRMATIONS}
    settings.CRYPTO_START_BLOCKS = {BASE: 0}
    chain.web3_factory_install(lambda chain_id: _session_chain.w3 if chain_id == BASE else _unreachable(chain_id))
    yield _session_chain
    chain.web3_factory_install(None)
    tester.revert_to_snapshot(snapshot)


def _unreachable(chain_id: int) -> Web3:
    raise chain.ChainUnavailable(f"no test chain {chain_id}")


def _send(evm: Chain, token: Any, to: str, usd: str) -> str:
    units = usd_to_nanos(usd) // chain.NANOS_PER_BASE_UNIT
    tx = token.functions.transfer(to, units).transact({"from": evm.payer})
    return Web3.to_hex(tx)


def _mine(evm: Chain, n: int) -> None:
    evm.w3.provider.ethereum_tester.mine_blocks(n)  # type: ignore[attr-defined]


def _address(triad: Triad) -> str:
    return deposit_address_get_or_create(organization=triad.org, chain_id=BASE).address


def test_it_credits_a_deposit_once_after_finality_and_not_before(triad: Triad, evm: Chain) -> None:
    tx = _send(evm, evm.usdc, _address(triad), "100")
    crypto_scan_chain(chain_id=BASE)
    deposit = CryptoDeposit.objects.get(tx_hash=tx)
    assert deposit.status == CryptoDeposit.Status.PENDING and deposit.confirmations == 1
    assert org_balance_nanos(triad.org) == 0
    _mine(evm, CONFIRMATIONS - 2)
    crypto_scan_chain(chain_id=BASE)
    assert org_balance_nanos(triad.org) == 0
    _mine(evm, 1)
    assert crypto_scan_chain_task(BASE) == 1  # the per-chain task itself
    deposit.refresh_from_db()
    assert deposit.status == CryptoDeposit.Status.CREDITED
    # $100 in, 5% fee: $95 of credit.
    assert org_balance_nanos(triad.org) == usd_to_nanos(95)
    assert deposit.fee_nanos == usd_to_nanos(5)
    _mine(evm, 5)
    crypto_scan_chain(chain_id=BASE)
    assert LedgerEntry.objects.filter(idempotency_key=f"crypto:{BASE}:{tx}:{deposit.log_index}").count() == 1
    assert org_balance_nanos(triad.org) == usd_to_nanos(95)
    fee = LedgerAccount.objects.get(kind=LedgerAccount.Kind.FEE_REVENUE, organization=None)
    assert fee.balance_nanos == usd_to_nanos(5)


def test_it_ignores_a_look_alike_token_sent_to_the_deposit_address(triad: Triad, evm: Chain) -> None:
    _send(evm, evm.lookalike, _address(triad), "100")
    _mine(evm, CONFIRMATIONS + 1)
    crypto_scan_chain(chain_id=BASE)
    assert not CryptoDeposit.objects.exists()
    assert org_balance_nanos(triad.org) == 0


def test_it_ignores_a_transfer_to_an_unknown_address(triad: Triad, evm: Chain) -> None:
    _address(triad)
    _send(evm, evm.usdc, evm.w3.eth.accounts[5], "100")
    _mine(evm, CONFIRMATIONS + 1)
    crypto_scan_chain(chain_id=BASE)
    assert not CryptoDeposit.objects.exists()


def test_it_credits_nothing_when_a_reorg_removes_the_transfer_before_finality(triad: Triad, evm: Chain) -> None:
    tester = evm.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    address = _address(triad)
    before = tester.take_snapshot()
    tx = _send(evm, evm.usdc, address, "50")
    crypto_scan_chain(chain_id=BASE)
    assert CryptoDeposit.objects.get(tx_hash=tx).status == CryptoDeposit.Status.PENDING
    tester.revert_to_snapshot(before)  # the block holding the transfer is gone
    _mine(evm, CONFIRMATIONS + 2)
    crypto_scan_chain(chain_id=BASE)
    assert CryptoDeposit.objects.get(tx_hash=tx).status == CryptoDeposit.Status.ORPHANED
    assert org_balance_nanos(triad.org) == 0
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.TOPUP).exists()


def test_it_credits_each_transfer_log_of_one_organization_separately(triad: Triad, evm: Chain) -> None:
    address = _address(triad)
    _send(evm, evm.usdc, address, "10")
    _send(evm, evm.usdc, address, "20")
    _mine(evm, CONFIRMATIONS)
    crypto_scan_chain(chain_id=BASE)
    assert CryptoDeposit.objects.filter(status=CryptoDeposit.Status.CREDITED).count() == 2
    assert org_balance_nanos(triad.org) == usd_to_nanos("28.50")


def test_it_keeps_a_dust_deposit_for_an_operator_instead_of_crediting_it(triad: Triad, evm: Chain) -> None:
    _send(evm, evm.usdc, _address(triad), "0.50")
    _mine(evm, CONFIRMATIONS)
    crypto_scan_chain(chain_id=BASE)
    assert CryptoDeposit.objects.get().status == CryptoDeposit.Status.BELOW_MINIMUM
    assert org_balance_nanos(triad.org) == 0


def test_it_refuses_an_rpc_that_answers_for_another_chain(triad: Triad, evm: Chain, settings: Any) -> None:
    _send(evm, evm.usdc, _address(triad), "100")
    settings.CRYPTO_RPC_CHAIN_IDS = {**settings.CRYPTO_RPC_CHAIN_IDS, BASE: BASE}  # the tester is not Base mainnet
    _mine(evm, CONFIRMATIONS)
    result = crypto_scan_chain(chain_id=BASE)
    assert result.errors and "chain id" in result.errors[0]
    assert not CryptoDeposit.objects.exists()


def test_it_refuses_an_unknown_chain(triad: Triad, evm: Chain) -> None:
    with pytest.raises(CryptoError):
        deposit_address_get_or_create(organization=triad.org, chain_id=56)


def test_it_gives_each_organization_its_own_stable_address(triad: Triad, evm: Chain) -> None:
    first = _address(triad)
    assert _address(triad) == first
    other = deposit_address_get_or_create(organization=triad.outsider_org, chain_id=BASE).address
    assert other != first and Web3.is_checksum_address(first)


def test_it_shows_owners_their_address_and_pending_then_credited_deposits(
    triad: Triad, evm: Chain, client: Client
) -> None:
    client.force_login(triad.owner)
    response = client.post(f"/o/{triad.org.slug}/credits/crypto/{BASE}/address/")
    assert response.status_code == 302
    address = DepositAddress.objects.get(organization=triad.org, chain_id=BASE).address
    _send(evm, evm.usdc, address, "40")
    crypto_scan_chain(chain_id=BASE)
    page = client.get(f"/o/{triad.org.slug}/credits/payments/").content.decode()
    assert address in page and "Pending deposits" in page and f"1/{CONFIRMATIONS} confirmations" in page
    _mine(evm, CONFIRMATIONS)
    crypto_scan_chain(chain_id=BASE)
    page = client.get(f"/o/{triad.org.slug}/credits/payments/").content.decode()
    assert "Pending deposits" not in page and "$38.00" in page and "Credited" in page


def test_it_refuses_members_an_address_and_reports_an_unknown_chain(triad: Triad, evm: Chain, client: Client) -> None:
    client.force_login(triad.member)
    assert client.post(f"/o/{triad.org.slug}/credits/crypto/{BASE}/address/").status_code == 403
    client.force_login(triad.owner)
    response = client.post(f"/o/{triad.org.slug}/credits/crypto/56/address/", follow=True)
    assert b"Unknown chain." in response.content
    assert not DepositAddress.objects.exists()


def test_it_says_crypto_is_not_configured_without_an_xpub(triad: Triad, client: Client, settings: Any) -> None:
    settings.CRYPTO_XPUB = ""
    client.force_login(triad.owner)
    assert b"Crypto payments are not configured" in client.get(f"/o/{triad.org.slug}/credits/payments/").content
