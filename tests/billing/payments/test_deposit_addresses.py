"""Deposit addresses from an xpub match what a wallet derives from the seed, with no private key here."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from eth_account import Account
from eth_account.hdaccount.deterministic import HardNode, derive_child_key, hmac_sha512
from eth_account.hdaccount.mnemonic import Mnemonic
from eth_keys import keys
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from billing.payments import chain
from tests.billing.payments.support import FIXTURES

MNEMONIC = "test test test test test test test test test test test junk"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _b58check(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    num, out = int.from_bytes(raw, "big"), ""
    while num:
        num, rem = divmod(num, 58)
        out = B58[rem] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out


def _account_xpub(mnemonic: str) -> str:
    """What a wallet exports for m/44'/60'/0' (computed here from the seed, as the operator would offline)."""
    seed = Mnemonic.to_seed(mnemonic)
    master = hmac_sha512(b"Bitcoin seed", seed)
    key, code = master[:32], master[32:]
    for node in (HardNode(44), HardNode(60), HardNode(0)):
        key, code = derive_child_key(key, code, node)
    public = keys.PrivateKey(key).public_key.to_compressed_bytes()
    payload = bytes.fromhex("0488B21E") + bytes([3]) + b"\0" * 4 + (2**31).to_bytes(4, "big") + code + public
    return _b58check(payload)


@pytest.mark.parametrize("index", [0, 7, 99, 123456])
def test_it_derives_the_same_address_a_wallet_derives_from_the_seed(index: int) -> None:
    Account.enable_unaudited_hdwallet_features()
    expected = Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").address
    assert chain.deposit_address_derive(_account_xpub(MNEMONIC), index) == expected


def test_it_refuses_a_mistyped_xpub() -> None:
    xpub = _account_xpub(MNEMONIC)
    broken = xpub[:-1] + ("1" if xpub[-1] != "1" else "2")
    with pytest.raises(chain.CryptoConfigError):
        chain.deposit_address_derive(broken, 0)


def test_it_refuses_a_hardened_index() -> None:
    with pytest.raises(chain.CryptoConfigError):
        chain.deposit_address_derive(_account_xpub(MNEMONIC), 2**31)


def test_it_drops_a_look_alike_tokens_log_even_if_the_rpc_returned_it(settings: Any) -> None:
    """The RPC filter is not trusted: a log from any contract but the allow-listed one is dropped."""
    w3 = Web3(EthereumTesterProvider())
    owner, target = w3.eth.accounts[0], w3.eth.accounts[1]
    compiled = json.loads((FIXTURES / "token" / "TestUSDC.json").read_text())
    factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    addresses = [
        w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": owner}))["contractAddress"]
        for _ in range(2)
    ]
    real, fake = (w3.eth.contract(address=a, abi=compiled["abi"]) for a in addresses)
    fake.functions.mint(target, 5_000_000).transact({"from": owner})
    receipt = w3.eth.get_transaction_receipt(real.functions.mint(target, 5_000_000).transact({"from": owner}))
    settings.CRYPTO_RPC_CHAIN_IDS = {**settings.CRYPTO_RPC_CHAIN_IDS, 8453: int(w3.eth.chain_id)}
    settings.CRYPTO_TOKENS = {8453: [real.address]}
    chain.web3_factory_install(lambda _cid: w3)
    try:
        reader = chain.chain_reader(8453)
        fake_logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": fake.address})
        assert fake_logs, "the look-alike emitted a Transfer"
        assert all(reader._decode(log, {target.lower()}) is None for log in fake_logs)
        decoded = reader._decode(receipt["logs"][0], {target.lower()})
        assert decoded is not None and decoded.amount_nanos == 5_000_000 * chain.NANOS_PER_BASE_UNIT
    finally:
        chain.web3_factory_install(None)
