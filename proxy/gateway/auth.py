"""Bearer-key authentication for the hot path, from an in-process cache.

The database is read only on a cache miss (in a thread, off the event loop). A change to a key or an
organization is published on commit (common/invalidation.py) and drops the entry in every process at
once; the few seconds an entry lives are only the backstop for a process that missed the message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from asgiref.sync import sync_to_async
from django.utils import timezone

from billing.gate import KeyState
from common.invalidation import listen
from organizations.keys import key_hash
from proxy.gateway.errors import GatewayError
from proxy.gateway.policy import NO_POLICY, DataPolicy, data_policy_of, key_models_of

V = TypeVar("V")

KEY_CACHE_SECONDS = 3.0
UNKNOWN_KEY_CACHE_SECONDS = 1.0
ORG_CACHE_SECONDS = 10.0
_MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class KeyRecord:
    state: KeyState
    disabled: bool
    is_management: bool
    expires_at: float | None  # unix seconds
    allowed_models: tuple[str, ...] = ()  # key-level model restriction (gateway/policy.py); empty: any


@dataclass(frozen=True, slots=True)
class OrgContext:
    byok_keys: dict[str, str]  # provider slug -> the organization's own upstream key
    allow_platform_fallback: bool
    log_prompts: bool
    policy: DataPolicy = NO_POLICY  # the organization's data policy, enforced on every request


class _TTLCache(Generic[V]):
    def __init__(self) -> None:
        self._items: dict[object, tuple[float, V]] = {}
        self._loading: dict[object, asyncio.Future[V]] = {}

    async def fetch(self, key: object, load: Callable[[], V], ttl: Callable[[V], float]) -> V:
        """The cached value, or one load (in a thread) shared by every caller that misses meanwhile:
        when an entry expires under 64 concurrent requests, the database is read once, not 64 times."""
        found, value = self.get(key)
        if found:
            return cast(V, value)  # the stored value, None included (an unknown key)
        pending = self._loading.get(key)
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = self._loading[key] = asyncio.ensure_future(self._load(key, load, ttl))
        # Shielded: a caller that goes away (client disconnect) does not cancel the others' load.
        return await asyncio.shield(pending)

    async def _load(self, key: object, load: Callable[[], V], ttl: Callable[[V], float]) -> V:
        try:
            value = await sync_to_async(load)()
            if self._loading.get(key) is asyncio.current_task():  # not dropped while loading
                self.put(key, value, ttl(value))
            return value
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]

    def get(self, key: object) -> tuple[bool, V | None]:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: object, value: V, ttl: float) -> None:
        if len(self._items) >= _MAX_ENTRIES:
            self._items.clear()  # crude but bounded: a burst of distinct keys cannot grow memory
        self._items[key] = (time.monotonic() + ttl, value)

    def drop(self, key: object) -> None:
        self._items.pop(key, None)
        self._loading.pop(key, None)  # a load already running read the old row: do not cache it

    def clear(self) -> None:
        self._items.clear()
        self._loading.clear()


_keys: _TTLCache[KeyRecord | None] = _TTLCache()
_orgs: _TTLCache[OrgContext] = _TTLCache()


def _load_key(digest: str) -> KeyRecord | None:
    from organizations.models import ApiKey

    row = ApiKey.objects.filter(hash=digest).first()
    if row is None:
        return None
    return KeyRecord(
        state=KeyState(
            key_id=row.pk,
            key_hash=row.hash,
            org_id=row.organization_id,
            limit_nanos=row.limit_nanos,
            limit_reset=row.limit_reset,
            include_byok_in_limit=row.include_byok_in_limit,
            user_id=row.created_by_id,
        ),
        disabled=row.disabled,
        is_management=row.is_management,
        expires_at=row.expires_at.timestamp() if row.expires_at else None,
        allowed_models=key_models_of(row),
    )


def _load_org(org_id: int) -> OrgContext:
    from organizations.byok import byok_keys_for_org
    from organizations.models import Organization

    org = Organization.objects.get(pk=org_id)
    return OrgContext(
        byok_keys=byok_keys_for_org(org_id),
        allow_platform_fallback=org.byok_allow_platform_fallback,
        log_prompts=org.log_prompts,
        policy=data_policy_of(org),
    )


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise GatewayError(401, "No auth credentials found")
    return token


async def authenticate(authorization: str) -> KeyRecord:
    """The inference key behind an `Authorization` header, or a 401/403 GatewayError."""
    digest = key_hash(bearer_token(authorization))
    record = await _keys.fetch(digest, lambda: _load_key(digest), _key_ttl)
    if record is None:
        raise GatewayError(401, "User not found.")
    if record.disabled:
        raise GatewayError(401, "This API key is disabled.")
    if record.expires_at is not None and record.expires_at <= timezone.now().timestamp():
        raise GatewayError(401, "This API key has expired.")
    if record.is_management:
        raise GatewayError(403, "Management keys cannot be used for completions; create an inference key.")
    return record


def _key_ttl(record: KeyRecord | None) -> float:
    return KEY_CACHE_SECONDS if record else UNKNOWN_KEY_CACHE_SECONDS


async def org_context(org_id: int) -> OrgContext:
    return await _orgs.fetch(org_id, lambda: _load_org(org_id), lambda _: ORG_CACHE_SECONDS)


def caches_clear() -> None:
    """For tests that change keys or BYOK settings and expect the very next request to see it."""
    _keys.clear()
    _orgs.clear()


def _on_change(kind: str, ident: str) -> None:
    if kind == "key":
        _keys.drop(ident)  # the key's hash, which is also its cache key
    elif kind == "org" and ident.isdigit():
        _orgs.drop(int(ident))


listen(_on_change)
