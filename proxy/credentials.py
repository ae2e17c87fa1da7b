"""The platform's own upstream credentials (never stored in the database).

settings.py collects every `<SLUG>_API_KEY` / `<SLUG>_BASE_URL` variable once at startup into
`settings.PROVIDER_ENV`; this module maps a provider slug to its names there. Rule: slug upper-cased
with '-' and '.' turned into '_': `deepinfra` -> DEEPINFRA_API_KEY, `google-ai-studio` ->
GOOGLE_AI_STUDIO_API_KEY. Google AI Studio also answers to the names people already have in their
shells (GEMINI_API_KEY / GEMINI_BASE_URL).
"""

from __future__ import annotations

from django.conf import settings

# Extra names tried after the canonical one, for providers whose SDKs taught users another name.
_ALIASES: dict[str, tuple[str, ...]] = {
    "google-ai-studio": ("GEMINI",),
    "xai": ("X_AI",),
}


def provider_env_prefix(slug: str) -> str:
    return slug.upper().replace("-", "_").replace(".", "_")


def _first_set(names: list[str]) -> str | None:
    env: dict[str, str] = settings.PROVIDER_ENV
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def provider_env(slug: str) -> tuple[str | None, str | None]:
    """(api key, base URL override) for a provider; None where the variable is unset or empty."""
    prefixes = [provider_env_prefix(slug), *_ALIASES.get(slug, ())]
    api_key = _first_set([f"{p}_API_KEY" for p in prefixes])
    base_url = _first_set([f"{p}_BASE_URL" for p in prefixes])
    return api_key, base_url
