"""A real JSON-RPC node for the crypto tests: eth-tester (py-evm) served over HTTP in its own process.

Run as `python -m tests.billing.payments.rpc_node`; it prints `PORT <n>` once it listens. Besides
the eth_* methods the scanner uses, it answers evm_mine, evm_snapshot and evm_revert, so tests mine
blocks and stage reorgs through the same wire a production node speaks.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider


def to_wire(value: Any) -> Any:
    """web3's Python answer back to JSON-RPC: integers as hex quantities, bytes as hex data."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, HexBytes)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


def main() -> None:
    w3 = Web3(EthereumTesterProvider())
    lock = Lock()  # eth-tester is not thread-safe

    def call(request: dict[str, Any]) -> dict[str, Any]:
        base = {"jsonrpc": "2.0", "id": request.get("id")}
        try:
            with lock:
                result = w3.manager.request_blocking(request["method"], request.get("params") or [])
            return {**base, "result": to_wire(result)}
        except Exception as exc:
            return {**base, "error": {"code": -32000, "message": f"{type(exc).__name__}: {exc}"}}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            answer = [call(r) for r in body] if isinstance(body, list) else call(body)
            raw = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
