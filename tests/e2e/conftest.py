"""End-to-end fixtures: the real gateway under uvicorn in front of the local mock provider.

The harness (catalog, world, gateway process, settlement helpers) lives in tests/e2e/support.py;
this module only makes its fixtures visible to the tests in this directory.
"""

from __future__ import annotations

from tests.e2e.support import _mock_server, client, gateway, mock_provider, openrouter_client, world

__all__ = ["_mock_server", "client", "gateway", "mock_provider", "openrouter_client", "world"]
