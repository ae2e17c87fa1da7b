"""The process's catalog snapshot: built once, rebuilt when another process bumps the version."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async

from proxy.catalog.snapshot import CatalogSnapshot, catalog_from_db, catalog_version_async

# How stale a process's catalog may be after an admin edit or `catalog_load`.
CHECK_EVERY_SECONDS = 5.0

_snapshot: CatalogSnapshot | None = None
_checked_at = 0.0


async def get_catalog() -> CatalogSnapshot:
    global _snapshot, _checked_at
    now = time.monotonic()
    if _snapshot is not None and now - _checked_at < CHECK_EVERY_SECONDS:
        return _snapshot
    _checked_at = now
    version = await _current_version()
    if _snapshot is None or _snapshot.version != version:
        _snapshot = await sync_to_async(catalog_from_db)()
    return _snapshot


async def _current_version() -> str:
    return str(await catalog_version_async())


def reset_catalog() -> None:
    """Forget the snapshot (tests that edit the catalog in-process)."""
    global _snapshot
    _snapshot = None
