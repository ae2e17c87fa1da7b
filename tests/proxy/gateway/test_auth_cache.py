"""The hot path's key and organization cache: a miss under concurrency reads the database once."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from organizations.keys import key_hash
from organizations.services import IssuedKey
from proxy.gateway import auth

pytestmark = pytest.mark.django_db(transaction=True)  # the loads run in a thread, on their own connection

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, then close the database connection the loads' thread opened."""

    async def wrapped() -> T:
        try:
            return await main
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(wrapped())


def counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Wrap a real loader (it still reads the database) to count its calls."""
    calls: list[Any] = []
    real = getattr(auth, name)

    def load(arg: Any) -> Any:
        calls.append(arg)
        return real(arg)

    monkeypatch.setattr(auth, name, load)
    return calls


def test_concurrent_misses_share_one_database_read(api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch) -> None:
    auth.caches_clear()
    key_loads, org_loads = counted(monkeypatch, "_load_key"), counted(monkeypatch, "_load_org")

    async def main() -> tuple[list[auth.KeyRecord], list[auth.OrgContext]]:
        records = await asyncio.gather(*(auth.authenticate(f"Bearer {api_key.key}") for _ in range(64)))
        orgs = await asyncio.gather(*(auth.org_context(records[0].state.org_id) for _ in range(64)))
        return list(records), list(orgs)

    records, orgs = run(main())
    assert key_loads == [key_hash(api_key.key)]
    assert org_loads == [api_key.api_key.organization_id]
    assert {r.state.key_id for r in records} == {api_key.api_key.pk}
    assert all(o is orgs[0] for o in orgs)


def test_an_unknown_key_is_refused_for_every_waiter_from_one_read(monkeypatch: pytest.MonkeyPatch) -> None:
    auth.caches_clear()
    key_loads = counted(monkeypatch, "_load_key")

    async def main() -> list[BaseException | auth.KeyRecord]:
        tries = (auth.authenticate("Bearer sk-or-v1-nobody") for _ in range(20))
        return list(await asyncio.gather(*tries, return_exceptions=True))

    outcomes = run(main())
    assert len(key_loads) == 1
    assert all(isinstance(o, auth.GatewayError) and o.status == 401 for o in outcomes)


def test_a_key_dropped_while_its_load_runs_is_not_cached_from_the_old_row(
    api_key: IssuedKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.caches_clear()
    digest = key_hash(api_key.key)
    real = auth._load_key

    def load_then_change(arg: str) -> Any:
        record = real(arg)
        auth._keys.drop(digest)  # the key changed (an invalidation message) after this read
        return record

    monkeypatch.setattr(auth, "_load_key", load_then_change)
    run(auth.authenticate(f"Bearer {api_key.key}"))
    assert auth._keys.get(digest) == (False, None)
