""" "Test this key" for a BYOK credential: list the provider's models with the organization's own key.

A GET on the provider's models endpoint costs nothing and proves the key authenticates. The secret is
decrypted only for the call and never logged or returned; the answer is a short, user-safe sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from organizations.byok import secret_decrypt
from organizations.models import ProviderCredential
from proxy.credentials import provider_env
from proxy.models import Provider
from proxy.transport import Timeouts, TransportError, transport

PROBE_TIMEOUTS = Timeouts(connect_s=5.0, first_byte_s=10.0, idle_s=10.0)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    message: str


def _models_request(provider: Provider, base_url: str, secret: str) -> tuple[str, dict[str, str]]:
    """The models endpoint and auth headers in each adapter's convention (see proxy.providers.*)."""
    base = base_url.rstrip("/")
    if provider.adapter == Provider.Adapter.ANTHROPIC:
        return f"{base}/v1/models", {"x-api-key": secret, "anthropic-version": "2023-06-01"}
    if provider.adapter == Provider.Adapter.GEMINI:
        return f"{base}/v1beta/models", {"x-goog-api-key": secret}
    return f"{base}/models", {"Authorization": f"Bearer {secret}"}  # OpenAI-compatible: base ends in /v1


def provider_selects() -> list[tuple[str, str]]:
    """(slug, name) of the catalog's providers that take an API key, for the BYOK form's select."""
    return list(Provider.objects.filter(requires_api_key=True).order_by("name").values_list("slug", "name"))


async def byok_probe(credential: ProviderCredential) -> ProbeResult:
    provider = await Provider.objects.filter(slug=credential.provider_slug).afirst()
    if provider is None:
        return ProbeResult(False, f"{credential.provider_slug} is not in the catalog, so it cannot be tested.")
    base_url = provider_env(provider.slug)[1] or provider.base_url
    if not base_url:
        return ProbeResult(False, f"No address is configured for {provider.name}.")
    url, headers = _models_request(provider, base_url, secret_decrypt(credential.secret_encrypted))
    try:
        status, body = await transport.get(url, headers, PROBE_TIMEOUTS)
    except TransportError as exc:
        return ProbeResult(False, f"{provider.name} could not be reached ({exc.kind}).")
    if status in (401, 403):
        return ProbeResult(False, f"{provider.name} refused the key (HTTP {status}).")
    if status != 200:
        return ProbeResult(False, f"{provider.name} answered HTTP {status}; try again later.")
    try:
        data = orjson.loads(body)
        count = len(data.get("data") or data.get("models") or [])
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        count = 0
    return ProbeResult(True, f"{provider.name} accepted the key ({count} models listed).")
