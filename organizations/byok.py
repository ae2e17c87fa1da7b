"""BYOK: organizations' own provider keys, encrypted at rest. Services, selectors and the cipher.

With billing/prompt_log.py (its own keys), the only module that imports `cryptography`.
Secrets are encrypted with a MultiFernet built from
`settings.BYOK_ENCRYPTION_KEYS`: the first key encrypts, every key decrypts, so an operator rotates
by putting a new key first, running `manage.py byok_rotate`, then dropping the old key. With no key
configured we derive one from SECRET_KEY so the embedded default works; that ties the secrets to
SECRET_KEY, hence the warning. Plaintext secrets are never logged, rendered or returned except by
`byok_keys_for_org`, which exists for the gateway alone.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404

from common.invalidation import publish_on_commit
from organizations.audit import audit_record
from organizations.models import Membership, Organization, ProviderCredential
from organizations.services import OrganizationError

logger = logging.getLogger(__name__)

PROVIDER_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
MAX_SECRET_CHARS = 8192


# --- The cipher ------------------------------------------------------------------------------


def _derived_key(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"byok-encryption-key:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _cipher_for(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        logger.warning(
            "BYOK_ENCRYPTION_KEYS is not set: provider keys are encrypted with a key derived from SECRET_KEY. "
            "Set BYOK_ENCRYPTION_KEYS (Fernet keys) before storing real secrets."
        )
        return MultiFernet([Fernet(_derived_key(secret_key))])
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as exc:
            # Say which entry is wrong, never what it contains.
            raise ImproperlyConfigured(
                f"BYOK_ENCRYPTION_KEYS entry {position} is not a Fernet key (32 url-safe base64 bytes)."
            ) from exc
    return MultiFernet(fernets)


def _cipher() -> MultiFernet:
    # Keyed on the current setting so tests (and a reloaded config) never reuse a stale cipher.
    keys = tuple(k.strip() for k in settings.BYOK_ENCRYPTION_KEYS if k.strip())
    return _cipher_for(keys, "" if keys else settings.SECRET_KEY)


def secret_encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def secret_decrypt(token: str) -> str:
    return _cipher().decrypt(token.encode()).decode()


def secret_hint(secret: str) -> str:
    """What the UI may show of a secret: its last four characters, and nothing of a short one."""
    return f"...{secret[-4:]}" if len(secret) >= 12 else "..."


def byok_generate_key() -> str:
    """A fresh value for BYOK_ENCRYPTION_KEYS (used by the rotate command's --generate)."""
    return Fernet.generate_key().decode()


# --- Services --------------------------------------------------------------------------------


def _require_manager(actor: Membership) -> None:
    if not actor.can_manage:
        raise OrganizationError("Only owners and admins can manage provider keys.")


@transaction.atomic
def provider_credential_set(*, actor: Membership, provider_slug: str, secret: str) -> ProviderCredential:
    """Store (or replace) the organization's key for one provider."""
    _require_manager(actor)
    provider_slug = provider_slug.strip().lower()
    secret = secret.strip()
    if not PROVIDER_SLUG.match(provider_slug):
        raise OrganizationError("A provider is a slug such as openai or anthropic.")
    if not secret:
        raise OrganizationError("Paste the provider's API key.")
    if len(secret) > MAX_SECRET_CHARS:
        raise OrganizationError("That key is too long.")
    credential, created = ProviderCredential.objects.select_for_update().update_or_create(
        organization=actor.organization,
        provider_slug=provider_slug,
        defaults={
            "secret_encrypted": secret_encrypt(secret),
            "hint": secret_hint(secret),
            "is_enabled": True,
            "created_by": actor.user,
        },
    )
    publish_on_commit("org", str(actor.organization_id))
    audit_record(
        organization=actor.organization,
        action="byok.created" if created else "byok.replaced",
        target=provider_slug,
        after={"hint": credential.hint, "is_enabled": True},
        actor=actor.user,
    )
    return credential


def provider_credential_set_enabled(
    *, actor: Membership, credential: ProviderCredential, is_enabled: bool
) -> ProviderCredential:
    _require_manager(actor)
    if credential.organization_id != actor.organization_id:
        raise Http404("No such provider key")
    before = {"is_enabled": credential.is_enabled}
    credential.is_enabled = is_enabled
    credential.save(update_fields=["is_enabled", "updated_at"])
    publish_on_commit("org", str(actor.organization_id))
    audit_record(
        organization=actor.organization,
        action="byok.enabled_changed",
        target=credential.provider_slug,
        before=before,
        after={"is_enabled": is_enabled},
        actor=actor.user,
    )
    return credential


def provider_credential_delete(*, actor: Membership, credential: ProviderCredential) -> None:
    _require_manager(actor)
    if credential.organization_id != actor.organization_id:
        raise Http404("No such provider key")
    credential.delete()
    publish_on_commit("org", str(actor.organization_id))
    audit_record(
        organization=actor.organization,
        action="byok.deleted",
        target=credential.provider_slug,
        before={"hint": credential.hint},
        actor=actor.user,
    )


def byok_fallback_set(*, actor: Membership, allow: bool) -> Organization:
    """Whether a request may fall back to the platform's key when the organization's own key fails."""
    _require_manager(actor)
    org = actor.organization
    before = {"byok_allow_platform_fallback": org.byok_allow_platform_fallback}
    org.byok_allow_platform_fallback = allow
    org.save(update_fields=["byok_allow_platform_fallback"])
    publish_on_commit("org", str(org.pk))
    audit_record(
        organization=org,
        action="byok.fallback_changed",
        before=before,
        after={"byok_allow_platform_fallback": allow},
        actor=actor.user,
    )
    return org


def byok_rotate() -> int:
    """Re-encrypt every stored secret with the first configured key. Returns how many rows changed.

    Idempotent and safe to interrupt: each row is rotated in its own short transaction, and a row
    already under the first key decrypts and re-encrypts just the same.
    """
    cipher = _cipher()
    rotated = 0
    for pk in ProviderCredential.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            credential = ProviderCredential.objects.select_for_update().filter(pk=pk).first()
            if credential is None:
                continue
            try:
                new_token = cipher.rotate(credential.secret_encrypted.encode()).decode()
            except InvalidToken:
                logger.error("BYOK credential %s cannot be decrypted with any configured key; left as is", pk)
                continue
            ProviderCredential.objects.filter(pk=pk).update(secret_encrypted=new_token)
            rotated += 1
    return rotated


# --- Selectors -------------------------------------------------------------------------------


def provider_credential_list(*, organization: Organization) -> QuerySet[ProviderCredential]:
    return ProviderCredential.objects.filter(organization=organization).select_related("created_by")


def provider_credential_get(*, organization: Organization, pk: int) -> ProviderCredential:
    try:
        return ProviderCredential.objects.get(organization=organization, pk=pk)
    except ProviderCredential.DoesNotExist as exc:
        raise Http404("No such provider key") from exc


def byok_keys_for_org(org_id: int) -> dict[str, str]:
    """provider_slug -> plaintext secret for the organization's enabled keys. For the gateway only.

    A secret that no configured key can decrypt (a key was dropped before rotating) is skipped and
    logged by id, so the request falls back to the platform key if the organization allows that.
    """
    cipher = _cipher()
    keys: dict[str, str] = {}
    rows = ProviderCredential.objects.filter(organization_id=org_id, is_enabled=True).values_list(
        "pk", "provider_slug", "secret_encrypted"
    )
    for pk, slug, token in rows:
        try:
            keys[slug] = cipher.decrypt(token.encode()).decode()
        except InvalidToken:
            logger.error("BYOK credential %s cannot be decrypted with any configured key", pk)
    return keys


def byok_allows_platform_fallback(org_id: int) -> bool:
    value = Organization.objects.filter(pk=org_id).values_list("byok_allow_platform_fallback", flat=True).first()
    return bool(value)
