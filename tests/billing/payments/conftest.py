"""Payment fixtures: Stripe settings, signed webhook deliveries, a canned Stripe API, a clean ledger.

The helpers they use live in support.py, which test modules import directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from billing.ledger import ledger_discrepancies
from billing.payments import chain, stripe_api
from tests.billing.payments.rpc_faults import FaultProxy
from tests.billing.payments.rpc_support import BASE, POLYGON, TESTER_CHAIN_ID, XPUB, RpcChain, RpcNode
from tests.billing.payments.stripe_standin import StripeStandIn
from tests.billing.payments.support import WEBHOOK_SECRET, Deliver, FakeStripeApi, sign


@pytest.fixture(autouse=True)
def _ledger_stays_clean(db: None) -> Iterator[None]:
    """After every payment test the ledger balances: cached balances match postings, entries sum to zero."""
    yield
    accounts, entries = ledger_discrepancies()
    assert accounts == [] and entries == []
    call_command("ledger_verify", stdout=StringIO())  # the operator's audit says the same (CommandError if not)


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    # The triad's four users would otherwise spend most of each test hashing passwords.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def stripe_keys(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_payments"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_payments"


@pytest.fixture
def deliver(client: Client, stripe_keys: None) -> Deliver:
    def _deliver(event: dict[str, Any], *, event_id: str | None = None, **sign_kw: Any) -> Any:
        if event_id:
            event = {**event, "id": event_id}
        body = json.dumps(event)
        return client.post(
            "/billing/stripe/webhook/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body, **sign_kw),
        )

    return _deliver


@pytest.fixture
def fake_stripe(stripe_keys: None) -> Iterator[FakeStripeApi]:
    api = FakeStripeApi()
    stripe_api.http_client_install(api.client)
    yield api
    stripe_api.http_client_install(None)


@pytest.fixture
def stripe_standin(stripe_keys: None, settings: Any) -> Iterator[StripeStandIn]:
    """Stripe over real HTTP on loopback (STRIPE_API_BASE), with a 1 s timeout on every call."""
    standin = StripeStandIn().start()
    settings.STRIPE_API_BASE = standin.url
    settings.STRIPE_TIMEOUT_SECONDS = 1
    yield standin
    standin.stop()


@pytest.fixture(scope="session")
def rpc_node() -> Iterator[RpcNode]:
    """The JSON-RPC node process (eth-tester over HTTP) with TestUSDC and a look-alike deployed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.billing.payments.rpc_node"],
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT "), f"the node did not start: {line!r}"
        yield RpcNode.deploy(f"http://127.0.0.1:{line.split()[1]}")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def _fault_proxies(rpc_node: RpcNode) -> Iterator[dict[int, FaultProxy]]:
    proxies = {chain_id: FaultProxy(rpc_node.url).start() for chain_id in (BASE, POLYGON)}
    yield proxies
    for proxy in proxies.values():
        proxy.stop()


@pytest.fixture
def rpc(rpc_node: RpcNode, _fault_proxies: dict[int, FaultProxy], settings: Any) -> Iterator[RpcChain]:
    """Base (and Polygon, off until a test adds it) scanned over HTTP through fault proxies; a snapshot per test."""
    snapshot = rpc_node.request("evm_snapshot")
    for proxy in _fault_proxies.values():
        proxy.clear()
        proxy.seen.clear()
    for chain_id in (BASE, POLYGON):
        cache.delete_many([f"billing:crypto-span:{chain_id}", f"billing:crypto-scan:{chain_id}"])
    head = rpc_node.w3.eth.block_number
    settings.CRYPTO_XPUB = XPUB
    settings.CRYPTO_RPC_URLS = {BASE: _fault_proxies[BASE].url}
    settings.CRYPTO_RPC_CHAIN_IDS = {**settings.CRYPTO_RPC_CHAIN_IDS, BASE: TESTER_CHAIN_ID, POLYGON: TESTER_CHAIN_ID}
    settings.CRYPTO_TOKENS = {BASE: [rpc_node.usdc.address], POLYGON: [rpc_node.lookalike.address]}
    settings.CRYPTO_CONFIRMATIONS = {**settings.CRYPTO_CONFIRMATIONS, BASE: 3, POLYGON: 3}
    settings.CRYPTO_START_BLOCKS = {BASE: head, POLYGON: head}
    settings.CRYPTO_RPC_TIMEOUT_SECONDS = 1
    chain.web3_factory_install(None)
    yield RpcChain(node=rpc_node, base=_fault_proxies[BASE], polygon=_fault_proxies[POLYGON])
    for proxy in _fault_proxies.values():
        proxy.clear()
    rpc_node.request("evm_revert", [snapshot])
