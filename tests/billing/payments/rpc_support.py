"""Helpers for the crypto tests that talk to the JSON-RPC node process over HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from web3 import Web3

from billing.payments import chain
from common.money import usd_to_nanos
from tests.billing.payments.rpc_faults import FaultProxy
from tests.billing.payments.support import FIXTURES

BASE = 8453
POLYGON = 137
TESTER_CHAIN_ID = 131277322940537
# Any valid xpub works: the server only ever sees public keys. This one is the BIP32 test vector 1 master.
XPUB = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"


@dataclass
class RpcNode:
    url: str
    w3: Web3
    usdc: Any
    lookalike: Any
    payer: str

    @classmethod
    def deploy(cls, url: str) -> RpcNode:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        owner = w3.eth.accounts[0]
        compiled = json.loads((FIXTURES / "token" / "TestUSDC.json").read_text())
        tokens = []
        for _ in range(2):
            factory = w3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
            receipt = w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": owner}))
            token = w3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])
            token.functions.mint(owner, 10**15).transact({"from": owner})
            tokens.append(token)
        return cls(url=url, w3=w3, usdc=tokens[0], lookalike=tokens[1], payer=owner)

    def request(self, method: str, params: list[Any] | None = None) -> Any:
        response = self.w3.provider.make_request(method, params or [])  # type: ignore[arg-type]
        assert "error" not in response, response
        return response["result"]

    def send(self, to: str, usd: str, token: Any = None) -> str:
        units = usd_to_nanos(usd) // chain.NANOS_PER_BASE_UNIT
        tx = (token or self.usdc).functions.transfer(to, units).transact({"from": self.payer})
        return Web3.to_hex(tx)

    def mine(self, n: int) -> None:
        self.request("evm_mine", [n])


@dataclass
class RpcChain:
    node: RpcNode
    base: FaultProxy
    polygon: FaultProxy
