from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from proxy.catalog.build import DEFAULT_OUT
from proxy.catalog.services import catalog_read
from proxy.selectors import catalog_cache_clear


@pytest.fixture(scope="session")
def shipped_catalog() -> dict[str, Any]:
    """The catalog file the repository ships (proxy/catalog/catalog.json), as `make run` loads it."""
    return catalog_read(DEFAULT_OUT)


@pytest.fixture(autouse=True)
def _fresh_models_cache() -> Iterator[None]:
    catalog_cache_clear()
    yield
    catalog_cache_clear()
