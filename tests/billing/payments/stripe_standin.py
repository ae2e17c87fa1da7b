"""A local Stripe stand-in over HTTP, for the calls auto top-up and checkout make.

Like Stripe, it saves the answer to each idempotency key, a 500 included, and replays it for any
later request with that key (https://docs.stripe.com/api/idempotent_requests). Faults are queued per
route: "500" (nothing created, 500 saved), "500_after_create" (the PaymentIntent is created and
charged, the answer is a 500), "hang" (answers after `hang_seconds`, past the client's timeout).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _form_metadata(form: dict[str, list[str]]) -> dict[str, str]:
    return {k[len("metadata[") : -1]: v[0] for k, v in form.items() if k.startswith("metadata[")}


@dataclass
class StripeStandIn:
    intent_status: str = "succeeded"
    hang_seconds: float = 3.0
    faults: dict[str, deque[str]] = field(default_factory=dict)
    intents: list[dict[str, Any]] = field(default_factory=list)
    saved: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, idempotency key)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fault(self, route: str, *kinds: str) -> None:
        self.faults.setdefault(route, deque()).extend(kinds)

    def charged(self, topup_id: str) -> int:
        return sum(1 for i in self.intents if i["metadata"].get("topup_id") == topup_id and i["status"] == "succeeded")

    def start(self) -> StripeStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); Stripe too carries on without it

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                standin.requests.append(("GET", parts.path, ""))
                if parts.path == "/v1/payment_intents":
                    customer = query.get("customer", [""])[0]
                    data = [i for i in standin.intents if i["customer"] == customer]
                    self._answer(200, {"object": "list", "data": data, "has_more": False, "url": parts.path})
                    return
                self._answer(404, {"error": {"type": "invalid_request_error", "message": "no route"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                key = self.headers.get("Idempotency-Key", "")
                path = urlsplit(self.path).path
                standin.requests.append(("POST", path, key))
                with standin.lock:
                    if key and key in standin.saved:
                        self._answer(*standin.saved[key])  # Stripe replays the first answer, errors too
                        return
                    queue = standin.faults.get(path)
                    fault = queue.popleft() if queue else ""
                    status, body = standin._create(path, form, fault)
                    if key:
                        standin.saved[key] = (status, body)
                if fault == "hang":
                    time.sleep(standin.hang_seconds)
                self._answer(status, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _create(self, path: str, form: dict[str, list[str]], fault: str) -> tuple[int, dict[str, Any]]:
        server_error = (500, {"error": {"type": "api_error", "message": "An unknown error occurred"}})
        if fault == "500":
            return server_error
        if path == "/v1/payment_intents":
            intent = {
                "id": f"pi_standin_{len(self.intents) + 1}",
                "object": "payment_intent",
                "amount": int(form["amount"][0]),
                "currency": "usd",
                "customer": form.get("customer", [""])[0],
                "payment_method": form.get("payment_method", [""])[0],
                "status": self.intent_status,
                "metadata": _form_metadata(form),
                "created": int(time.time()),
            }
            self.intents.append(intent)
            return server_error if fault == "500_after_create" else (200, intent)
        if path == "/v1/checkout/sessions":
            return 200, {"id": "cs_standin_1", "object": "checkout.session", "url": "https://checkout.test/1"}
        return 404, {"error": {"type": "invalid_request_error", "message": f"no route {path}"}}
