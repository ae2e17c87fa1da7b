"""A fault-injecting JSON-RPC proxy, in front of the test node, run in the test process.

Each rule matches a JSON-RPC method (or every method) and answers instead of the node:
- "rpc_error": a JSON-RPC error object (HTTP 200), as nodes do for internal errors;
- "http500": HTTP 500 with an HTML body, as a load balancer does;
- "too_many": for eth_getLogs wider than `max_range` blocks, the error providers send
  ("query returned more than 10000 results");
- "timeout": holds the request for `delay` seconds, past the client's timeout.
A rule fires `times` times (None: until removed).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Rule:
    kind: str
    method: str | None = None
    times: int | None = None
    max_range: int = 0
    delay: float = 2.0


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # methods forwarded or faulted, in order
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, kind: str, method: str | None = None, **kw: Any) -> Rule:
        rule = Rule(kind=kind, method=method, **kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def _match(self, request: dict[str, Any]) -> Rule | None:
        method = request.get("method")
        with self.lock:
            for rule in self.rules:
                if rule.method not in (None, method):
                    continue
                if rule.kind == "too_many":
                    query = (request.get("params") or [{}])[0]
                    width = int(query.get("toBlock", "0x0"), 16) - int(query.get("fromBlock", "0x0"), 16) + 1
                    if width <= rule.max_range:
                        continue
                if rule.times is not None:
                    if rule.times <= 0:
                        continue
                    rule.times -= 1
                return rule
        return None

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _send(self, status: int, raw: bytes, content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = json.loads(raw)
                proxy.seen.append(str(request.get("method")))
                rule = proxy._match(request) if isinstance(request, dict) else None
                if rule is not None and rule.kind == "timeout":
                    time.sleep(rule.delay)
                    return self._send(504, b"")
                if rule is not None and rule.kind == "http500":
                    return self._send(500, b"<html>500 Internal Server Error</html>", "text/html")
                if rule is not None:
                    message = "query returned more than 10000 results" if rule.kind == "too_many" else "internal error"
                    body = {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": -32005, "message": message}}
                    return self._send(200, json.dumps(body).encode())
                forward = urllib.request.Request(
                    proxy.upstream, data=raw, headers={"Content-Type": "application/json"}, method="POST"
                )
                with urllib.request.urlopen(forward, timeout=30) as response:
                    self._send(response.status, response.read())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
