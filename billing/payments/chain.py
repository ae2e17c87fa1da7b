"""The EVM edge: the only module that imports web3 / eth libraries.

Three jobs: chain configuration (from settings), reading USDC Transfer logs through one narrow
reader, and deriving deposit addresses from an extended public key (BIP32 public derivation, so
no private key is ever on the server). Token base units become nano-dollars here (USDC has 6
decimals: one base unit is 1,000 nano-dollars) and never leave this module.

Settings, with their defaults, are in settings.py (CRYPTO_*): RPC URLs, allow-listed token
contracts, confirmations, the chain id each RPC must answer, start blocks, scan range, RPC timeout,
minimum deposit.

Every RPC failure (a JSON-RPC error, an HTTP error, a timeout) surfaces as `ChainUnavailable`, never
as an answer: "I could not read the block" must not be mistaken for "the block is different", which
is the only evidence on which a deposit may be orphaned.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from django.conf import settings
from eth_keys.backends.native.ecdsa import decompress_public_key
from eth_keys.backends.native.jacobian import fast_add, fast_multiply
from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound
from web3.middleware import ExtraDataToPOAMiddleware

from common.money import usd_to_nanos

NANOS_PER_BASE_UNIT = 1_000  # USDC: 6 decimals, 1e-6 USD per base unit
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
ADDRESS_CHUNK = 200

CHAIN_NAMES = {1: "Ethereum", 137: "Polygon", 8453: "Base"}
POA_CHAINS = frozenset({137})


class CryptoConfigError(Exception):
    pass


class ChainUnavailable(Exception):
    """The RPC failed or answered for a different chain; the scan tries again next time."""


class RangeRefused(ChainUnavailable):
    """The node refused an eth_getLogs range (too many results, too wide, or an error): try a smaller one."""


@dataclass(frozen=True, slots=True)
class ChainConfig:
    chain_id: int
    name: str
    rpc_url: str
    rpc_chain_id: int
    tokens: frozenset[str]  # checksummed
    confirmations: int
    start_block: int | None
    max_block_range: int

    @property
    def reorg_window(self) -> int:
        return self.confirmations


def crypto_settings_problems() -> list[str]:
    """Configuration the scanner cannot work with, each as a sentence an operator can act on."""
    problems = []
    if int(settings.CRYPTO_MAX_BLOCK_RANGE) < 1:
        problems.append(f"CRYPTO_MAX_BLOCK_RANGE must be at least 1 (it is {settings.CRYPTO_MAX_BLOCK_RANGE}).")
    if int(settings.CRYPTO_RPC_TIMEOUT_SECONDS) < 1:
        problems.append("CRYPTO_RPC_TIMEOUT_SECONDS must be at least 1.")
    for chain_id, name in CHAIN_NAMES.items():
        prefix = name.upper()
        if int(settings.CRYPTO_CONFIRMATIONS.get(chain_id, 1)) < 1:
            problems.append(f"{prefix}_CONFIRMATIONS must be at least 1.")
        start = settings.CRYPTO_START_BLOCKS.get(chain_id)
        if start is not None and int(start) < 0:
            problems.append(f"{prefix}_START_BLOCK must be a block number (0 or more).")
        for token in settings.CRYPTO_TOKENS.get(chain_id, []):
            if not Web3.is_address(token):
                problems.append(f"{prefix}_USDC_CONTRACTS: {token!r} is not a contract address.")
    return problems


def chain_configs() -> dict[int, ChainConfig]:
    """The chains that can be scanned: those with an RPC URL, or a test Web3 installed."""
    urls: dict[int, str] = settings.CRYPTO_RPC_URLS
    tokens: dict[int, list[str]] = settings.CRYPTO_TOKENS
    confirmations: dict[int, int] = settings.CRYPTO_CONFIRMATIONS
    rpc_ids: dict[int, int] = settings.CRYPTO_RPC_CHAIN_IDS
    starts: dict[int, int] = settings.CRYPTO_START_BLOCKS
    out = {}
    for chain_id, name in CHAIN_NAMES.items():
        url = urls.get(chain_id) or ""
        if not url and _web3_factory is None:
            continue
        out[chain_id] = ChainConfig(
            chain_id=chain_id,
            name=name,
            rpc_url=url,
            rpc_chain_id=int(rpc_ids[chain_id]),
            # A chain without a token list accepts nothing rather than guessing a contract.
            tokens=frozenset(to_checksum_address(t) for t in tokens.get(chain_id, [])),
            confirmations=max(1, int(confirmations[chain_id])),
            start_block=starts.get(chain_id),
            max_block_range=int(settings.CRYPTO_MAX_BLOCK_RANGE),
        )
    return out


def chain_config(chain_id: int) -> ChainConfig:
    try:
        return chain_configs()[chain_id]
    except KeyError as exc:
        raise CryptoConfigError(f"Chain {chain_id} is not supported or not configured.") from exc


def min_deposit_nanos() -> int:
    return usd_to_nanos(settings.CRYPTO_MIN_DEPOSIT_USD)


# --- the test seam -----------------------------------------------------------------------------

_web3_factory: Callable[[int], Web3] | None = None


def web3_factory_install(factory: Callable[[int], Web3] | None) -> None:
    """Tests hand in a Web3 per chain (an EthereumTesterProvider); None restores HTTP RPC."""
    global _web3_factory
    _web3_factory = factory


def _web3_for(config: ChainConfig) -> Web3:
    if _web3_factory is not None:
        return _web3_factory(config.chain_id)
    # No provider-level retries: a failed call fails the scan step now, and the next scan retries it.
    w3 = Web3(
        Web3.HTTPProvider(
            config.rpc_url,
            request_kwargs={"timeout": int(settings.CRYPTO_RPC_TIMEOUT_SECONDS)},
            exception_retry_configuration=None,
        )
    )
    if config.chain_id in POA_CHAINS:
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


# --- reading the chain -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferLog:
    tx_hash: str  # 0x-prefixed lowercase hex
    log_index: int
    block_number: int
    block_hash: str
    token: str
    from_address: str
    to_address: str
    amount_nanos: int


def _hex(value: Any) -> str:
    return Web3.to_hex(value) if not isinstance(value, str) else value.lower()


def _topic_address(topic: Any) -> str:
    raw = bytes(topic) if not isinstance(topic, str) else bytes.fromhex(topic.removeprefix("0x"))
    return to_checksum_address(raw[-20:])


def _pad_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


TransferCheck = Literal["ok", "gone", "unknown"]


def _rpc_error(config: ChainConfig, what: str, exc: Exception) -> ChainUnavailable:
    return ChainUnavailable(f"{config.name}: {what} failed: {type(exc).__name__}: {str(exc)[:200]}")


_TRANSPORT_ERRORS = (requests.exceptions.Timeout, requests.exceptions.ConnectionError)


class ChainReader:
    """A checked connection to one chain: every answer is from the configured chain id.

    Methods either answer from a successful read or raise `ChainUnavailable`.
    """

    def __init__(self, config: ChainConfig) -> None:
        self.config = config
        self.w3 = _web3_for(config)
        try:
            actual = int(self.w3.eth.chain_id)
        except Exception as exc:  # the RPC's many transport errors all mean "not now"
            raise ChainUnavailable(f"{config.name}: RPC unreachable: {exc}") from exc
        if actual != config.rpc_chain_id:
            raise ChainUnavailable(f"{config.name}: RPC answers chain id {actual}, expected {config.rpc_chain_id}")

    def head(self) -> int:
        try:
            return int(self.w3.eth.block_number)
        except Exception as exc:
            raise _rpc_error(self.config, "eth_blockNumber", exc) from exc

    def block_hash(self, number: int) -> str | None:
        """The canonical hash at `number`, or None when the node positively has no such block yet."""
        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        except Exception as exc:
            raise _rpc_error(self.config, f"eth_getBlockByNumber({number})", exc) from exc
        return _hex(block["hash"])

    def transfer_logs(self, from_block: int, to_block: int, addresses: Iterable[str]) -> list[TransferLog]:
        """USDC Transfer logs into `addresses`, from allow-listed token contracts only.

        Raises `RangeRefused` when the node answers the eth_getLogs call with an error (the caller
        retries with a smaller range) and `ChainUnavailable` when it cannot be reached at all.
        """
        wanted = sorted({a.lower() for a in addresses})
        if not wanted or not self.config.tokens or from_block > to_block:
            return []
        out: list[TransferLog] = []
        for start in range(0, len(wanted), ADDRESS_CHUNK):
            chunk = wanted[start : start + ADDRESS_CHUNK]
            query = {
                "fromBlock": from_block,
                "toBlock": to_block,
                "address": sorted(self.config.tokens),
                "topics": [TRANSFER_TOPIC, None, [_pad_topic(a) for a in chunk]],
            }
            try:
                logs = self.w3.eth.get_logs(query)  # type: ignore[arg-type]
            except _TRANSPORT_ERRORS as exc:
                raise _rpc_error(self.config, "eth_getLogs", exc) from exc
            except Exception as exc:
                raise RangeRefused(f"{self.config.name}: eth_getLogs {from_block}..{to_block} refused: {exc}") from exc
            out.extend(t for t in (self._decode(log, set(chunk)) for log in logs) if t is not None)
        return out

    def _decode(self, log: Any, wanted: set[str]) -> TransferLog | None:
        # The RPC filter is a request, not a guarantee: check the contract and topics ourselves,
        # because a look-alike token emits the very same Transfer event.
        address = to_checksum_address(log["address"])
        topics = log["topics"]
        if log.get("removed") or address not in self.config.tokens or len(topics) != 3:
            return None
        if _hex(topics[0]) != TRANSFER_TOPIC:
            return None
        to_address = _topic_address(topics[2])
        if to_address.lower() not in wanted:
            return None
        data = log["data"]
        raw = bytes(data) if not isinstance(data, str) else bytes.fromhex(data.removeprefix("0x"))
        return TransferLog(
            tx_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            block_number=int(log["blockNumber"]),
            block_hash=_hex(log["blockHash"]),
            token=address,
            from_address=_topic_address(topics[1]),
            to_address=to_address,
            amount_nanos=int.from_bytes(raw[:32], "big") * NANOS_PER_BASE_UNIT,
        )

    def transfer_check(self, transfer_key: tuple[str, int], block_hash: str, to_address: str) -> TransferCheck:
        """Re-read the receipt at finality: succeeded, same block, same allow-listed log to us.

        "ok": credit it. "gone": positive evidence it is not in the canonical chain as we saw it
        (failed, moved to another block, the log differs). "unknown": no receipt from this node
        although the block is still there (a lagging node behind a load balancer), so ask again later.
        An RPC error raises `ChainUnavailable`.
        """
        tx_hash, log_index = transfer_key
        try:
            receipt = self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except TransactionNotFound:
            return "unknown"
        except Exception as exc:
            raise _rpc_error(self.config, "eth_getTransactionReceipt", exc) from exc
        if int(receipt["status"]) != 1 or _hex(receipt["blockHash"]) != block_hash:
            return "gone"
        for log in receipt["logs"]:
            if int(log["logIndex"]) == log_index:
                return "ok" if self._decode(log, {to_address.lower()}) is not None else "gone"
        return "gone"


def chain_reader(chain_id: int) -> ChainReader:
    return ChainReader(chain_config(chain_id))


# --- deposit addresses (BIP32 public derivation) -----------------------------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECP256K1_G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)


def _b58check_decode(text: str) -> bytes:
    num = 0
    for ch in text:
        idx = _B58.find(ch)
        if idx < 0:
            raise CryptoConfigError("The xpub is not base58.")
        num = num * 58 + idx
    raw = num.to_bytes((num.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    payload, checksum = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise CryptoConfigError("The xpub checksum does not match.")
    return payload


def _compress(point: tuple[int, int]) -> bytes:
    return bytes([2 + (point[1] & 1)]) + point[0].to_bytes(32, "big")


def _point(compressed: bytes) -> tuple[int, int]:
    raw = decompress_public_key(compressed)
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _child(pubkey: bytes, chain_code: bytes, index: int) -> tuple[bytes, bytes]:
    if not 0 <= index < 2**31:
        raise CryptoConfigError("Only non-hardened indexes can be derived from an xpub.")
    digest = hmac.new(chain_code, pubkey + index.to_bytes(4, "big"), hashlib.sha512).digest()
    tweak = int.from_bytes(digest[:32], "big")
    if tweak >= _SECP256K1_N:
        raise CryptoConfigError("Invalid child index (tweak out of range); use the next index.")
    child = fast_add(fast_multiply(_SECP256K1_G, tweak), _point(pubkey))
    return _compress(child), digest[32:]


def xpub_parse(xpub: str) -> tuple[bytes, bytes]:
    """(compressed public key, chain code) of a serialized extended public key."""
    payload = _b58check_decode(xpub.strip())
    if len(payload) != 78 or payload[45] not in (2, 3):
        raise CryptoConfigError("That is not an extended public key (xpub).")
    return payload[45:78], payload[13:45]


def deposit_address_derive(xpub: str, index: int) -> str:
    """The checksummed address at <xpub>/0/<index> (the external chain, as wallets use it)."""
    pubkey, chain_code = xpub_parse(xpub)
    external, external_code = _child(pubkey, chain_code, 0)
    child, _ = _child(external, external_code, index)
    x, y = _point(child)
    return to_checksum_address(keccak(x.to_bytes(32, "big") + y.to_bytes(32, "big"))[12:])
