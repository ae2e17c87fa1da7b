"""The end-to-end harness's catalog and world, for the in-process gateway tests (see support.py)."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from tests.e2e.support import World, _mock_server, mock_provider, provider_env, world
from tests.mockprovider import MockProvider

__all__ = ["_mock_server", "live", "mock_provider", "world"]


@pytest.fixture
def live(world: World, mock_provider: MockProvider, settings: Settings) -> World:
    """The e2e world with the mock providers' credentials in settings, as a gateway process reads them."""
    settings.PROVIDER_ENV = provider_env(world, mock_provider)
    return world
