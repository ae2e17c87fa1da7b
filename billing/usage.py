"""The usage event: what the gateway reports about one generation, queued for settlement.

The gateway builds it after the response ends (no database write on the request path); the
settlement worker turns it into a `billing.Generation` row and a ledger entry, idempotently on
`generation_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class UsageEvent:
    generation_id: str
    organization_id: int
    api_key_id: int | None
    key_hash: str
    user_id: int | None
    model: str
    provider_slug: str
    provider_name: str
    endpoint_tag: str
    created_at: float  # unix seconds, when the request arrived
    upstream_id: str = ""
    api_type: str = "completions"
    router: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    images: int = 0
    usage_estimated: bool = False
    list_cost_nanos: int = 0  # at the serving endpoint's list price
    # What plugins cost the platform (a web search): charged in full, BYOK or not, never part of the BYOK fee base.
    plugin_cost_nanos: int = 0
    web_search_engine: str = ""  # the engine that searched, when the web plugin did
    search_results: int | None = None
    cost_nanos: int = 0  # what the organization is charged (set by the gate: list cost, BYOK fee, or 0)
    is_byok: bool = False
    latency_ms: int | None = None
    ttft_ms: int | None = None
    generation_time_ms: int | None = None
    finish_reason: str = ""
    native_finish_reason: str = ""
    streamed: bool = False
    cancelled: bool = False
    http_referer: str = ""
    app_title: str = ""
    external_user: str = ""
    provider_responses: list[dict[str, Any]] = field(default_factory=list)
    # Only for organizations that opted into prompt logging: the request and response, already
    # encrypted by the gateway (billing/prompt_log.py), so the queue never holds plaintext. "" otherwise.
    prompt_log: str = ""

    def to_json(self) -> bytes:
        # orjson serializes a dataclass natively, in field order: asdict() would deep-copy it first.
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> UsageEvent:
        return cls(**orjson.loads(raw))
