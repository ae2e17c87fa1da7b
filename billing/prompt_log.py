"""Prompt logging for organizations that opt in: the cipher, the write, the reads, export, deletion,
retention and key rotation.

The gateway seals each record (request body and delivered response) with `prompt_log_seal` before
the usage event leaves the process, so Redis, Celery messages and dead letters only ever hold the
Fernet token; settlement stores that token as a `PromptLog` row; only the generation page, the
export and rotation decrypt. The keys are PROMPT_LOG_ENCRYPTION_KEYS (first encrypts, all decrypt),
never BYOK's, so leaking one set of keys opens only one kind of secret. With no key configured
nothing is sealed and logging cannot be switched on: there is deliberately no fallback key derived
from SECRET_KEY here, because prompt bodies are the data an organization most needs kept private.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from billing.models import PromptLog
from billing.usage import UsageEvent
from organizations.audit import audit_record
from organizations.models import Membership, Organization
from organizations.services import OrganizationError

logger = logging.getLogger(__name__)

# A record bigger than this (serialized) is kept as a marked prefix: one huge request must not
# make a Redis stream entry, a Celery batch or a row unbounded.
MAX_RECORD_BYTES = 1 << 20


# --- The cipher ------------------------------------------------------------------------------


def _configured_keys() -> tuple[str, ...]:
    return tuple(k.strip() for k in settings.PROMPT_LOG_ENCRYPTION_KEYS if k.strip())


@lru_cache(maxsize=4)
def _cipher_for(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as exc:
            # Say which entry is wrong, never what it contains.
            raise ImproperlyConfigured(
                f"PROMPT_LOG_ENCRYPTION_KEYS entry {position} is not a Fernet key (32 url-safe base64 bytes)."
            ) from exc
    return MultiFernet(fernets)


def _cipher() -> MultiFernet | None:
    keys = _configured_keys()
    return _cipher_for(keys) if keys else None


def prompt_logging_available() -> bool:
    """Whether an organization may switch logging on (an encryption key is configured)."""
    return bool(_configured_keys())


def prompt_log_generate_key() -> str:
    """A fresh value for PROMPT_LOG_ENCRYPTION_KEYS (the rotate command's --generate)."""
    return Fernet.generate_key().decode()


def _bounded(record: Mapping[str, Any]) -> bytes:
    raw = orjson.dumps(record)
    if len(raw) <= MAX_RECORD_BYTES:
        return raw
    half = MAX_RECORD_BYTES // 2
    request = orjson.dumps(record.get("request"))[:half].decode("utf-8", "ignore")
    response = orjson.dumps(record.get("response"))[:half].decode("utf-8", "ignore")
    return orjson.dumps({"truncated": True, "request_json_prefix": request, "response_json_prefix": response})


def prompt_log_seal(record: Mapping[str, Any]) -> str:
    """The encrypted record for the usage event, or "" when no key is configured (nothing is kept)."""
    cipher = _cipher()
    if cipher is None:
        return ""
    return cipher.encrypt(_bounded(record)).decode()


def _open(token: str) -> dict[str, Any] | None:
    cipher = _cipher()
    if cipher is None:
        return None
    try:
        value = orjson.loads(cipher.decrypt(token.encode()))
    except InvalidToken:
        return None
    return value if isinstance(value, dict) else None


# --- Write (settlement) ----------------------------------------------------------------------


def prompt_logs_write(events: Sequence[UsageEvent], orgs: Mapping[int, Organization]) -> int:
    """Store the sealed records of settled events; replays change nothing. Call in settlement's transaction.

    An organization that switched logging off between the request and settlement gets nothing stored.
    """
    rows = [
        PromptLog(
            generation_id=e.generation_id,
            organization_id=e.organization_id,
            payload=e.prompt_log,
            created_at=datetime.fromtimestamp(e.created_at, UTC),
        )
        for e in events
        if e.prompt_log and e.organization_id in orgs and orgs[e.organization_id].log_prompts
    ]
    if rows:
        PromptLog.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- Reads -----------------------------------------------------------------------------------


def prompt_log_get(*, organization: Organization, generation_id: str) -> dict[str, Any] | None:
    """The decrypted record of one generation of this organization, or None (none kept, or undecryptable)."""
    token = (
        PromptLog.objects.filter(organization=organization, generation_id=generation_id)
        .values_list("payload", flat=True)
        .first()
    )
    if token is None:
        return None
    record = _open(token)
    if record is None:
        logger.error("prompt log of %s cannot be decrypted with any configured key", generation_id)
    return record


def prompt_log_count(*, organization: Organization) -> int:
    return PromptLog.objects.filter(organization=organization).count()


def _require_owner(actor: Membership) -> None:
    if actor.role != Membership.Role.OWNER:
        raise OrganizationError("Only owners can export or delete the organization's prompt logs.")


def prompt_logs_export(*, actor: Membership) -> Iterator[bytes]:
    """The organization's prompt logs as JSON lines, in the order stored: each item is one chunk of lines, one
    keyset query each (a streamed response pulls them one at a time, never the whole log in memory).

    The export itself is audited when it is requested, before the first line is produced.
    """
    _require_owner(actor)
    organization = actor.organization
    audit_record(
        organization=organization,
        action="prompt_log.exported",
        after={"count": prompt_log_count(organization=organization)},
        actor=actor.user,
    )
    return _export_lines(organization.pk)


EXPORT_CHUNK = 200


def _export_lines(org_id: int) -> Iterator[bytes]:
    after = 0
    while True:
        rows = list(
            PromptLog.objects.filter(organization_id=org_id, pk__gt=after)
            .order_by("pk")
            .values_list("pk", "generation_id", "created_at", "payload")[:EXPORT_CHUNK]
        )
        if not rows:
            return
        yield b"".join(_export_line(generation_id, created_at, token) for _, generation_id, created_at, token in rows)
        after = rows[-1][0]


def _export_line(generation_id: str, created_at: datetime, token: str) -> bytes:
    record = _open(token)
    line: dict[str, Any] = {"generation_id": generation_id, "created_at": created_at.isoformat()}
    if record is None:
        line["error"] = "cannot be decrypted with the configured keys"
    else:
        line.update({k: v for k, v in record.items() if k not in line})
    return orjson.dumps(line) + b"\n"


@transaction.atomic
def prompt_logs_delete_all(*, actor: Membership) -> int:
    """Delete every stored prompt log of the organization. Returns how many went."""
    _require_owner(actor)
    deleted, _ = PromptLog.objects.filter(organization=actor.organization).delete()
    audit_record(
        organization=actor.organization,
        action="prompt_log.deleted_all",
        before={"count": deleted},
        after={"count": 0},
        actor=actor.user,
    )
    return deleted


# --- Retention and rotation ------------------------------------------------------------------


def prompt_logs_purge(*, now: datetime | None = None) -> int:
    """Delete logs older than their organization's retention. Returns how many went."""
    now = now or timezone.now()
    deleted = 0
    orgs: Iterable[tuple[int, int]] = (
        Organization.objects.filter(prompt_logs__isnull=False)
        .distinct()
        .values_list("pk", "log_prompts_retention_days")
    )
    for org_id, days in orgs:
        cutoff = now - timedelta(days=days)
        count, _ = PromptLog.objects.filter(organization_id=org_id, created_at__lt=cutoff).delete()
        deleted += count
    return deleted


def prompt_log_rotate() -> int:
    """Re-encrypt every stored log with the first configured key. Returns how many rows changed.

    Idempotent and safe to interrupt: each row is rotated on its own, and a row already under the
    first key decrypts and re-encrypts just the same.
    """
    cipher = _cipher()
    if cipher is None:
        raise ImproperlyConfigured("PROMPT_LOG_ENCRYPTION_KEYS is empty: nothing to rotate with.")
    rotated = 0
    for pk in list(PromptLog.objects.order_by("pk").values_list("pk", flat=True)):
        with transaction.atomic():
            token = PromptLog.objects.select_for_update().filter(pk=pk).values_list("payload", flat=True).first()
            if token is None:
                continue  # purged meanwhile
            try:
                new_token = cipher.rotate(token.encode()).decode()
            except InvalidToken:
                logger.error("prompt log %s cannot be decrypted with any configured key; left as is", pk)
                continue
            PromptLog.objects.filter(pk=pk).update(payload=new_token)
            rotated += 1
    return rotated
