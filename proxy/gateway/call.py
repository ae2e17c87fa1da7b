"""What one admitted request carries from admission to settlement, and what an attempt produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from billing.gate import KeyState
from billing.pricing import Usage
from proxy.catalog.snapshot import CatalogSnapshot
from proxy.gateway.auth import KeyRecord, OrgContext
from proxy.gateway.transcript import Transcript
from proxy.gateway.validate import ParsedRequest
from proxy.plugins.web import WebSearch
from proxy.routing import Attempt
from proxy.skins.base import RenderContext, Skin


@dataclass(slots=True)
class Call:
    """Everything one admitted request carries from admission to settlement."""

    generation_id: str
    created: int
    t0: float  # perf_counter at arrival
    key: KeyRecord
    org: OrgContext
    req: ParsedRequest
    attempts: tuple[Attempt, ...]  # never empty: admission refuses a request with nothing to try
    catalog: CatalogSnapshot
    prompt_tokens: int
    router: str
    http_referer: str
    app_title: str
    provider_responses: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    skin: Skin | None = None  # came in on /messages or /responses: rendered by that skin; None is chat
    web: WebSearch | None = None  # the web plugin's search, run after the hold (proxy/plugins/web)

    def render_context(self, attempt: Attempt) -> RenderContext:
        return RenderContext(
            generation_id=self.generation_id,
            created=self.created,
            model=attempt.model_slug,
            provider_name=attempt.candidate.provider_name,
            prompt_tokens=self.prompt_tokens,
        )

    @property
    def key_state(self) -> KeyState:
        return self.key.state

    def headers(self, attempt: Attempt | None = None) -> dict[str, str]:
        """Response headers: the generation id always, the provider once one answers."""
        headers = {"X-Generation-Id": self.generation_id}
        if attempt is not None:
            headers["X-OpenRouter-Provider"] = attempt.candidate.provider_name
        return headers


@dataclass(slots=True)
class Outcome:
    """What an attempt produced, for billing and the generation record."""

    attempt: Attempt
    usage: Usage | None
    delivered_chars: int = 0
    has_output: bool = False
    finish_reason: str = ""
    native_finish_reason: str = ""
    upstream_id: str = ""
    ttft_ms: int | None = None
    streamed: bool = False
    cancelled: bool = False
    truncated: bool = False
    transcript: Transcript | None = None  # what was delivered; only when the organization logs prompts
    service_tier: str | None = None  # the tier the upstream says it served ("priority", "default", ...)
