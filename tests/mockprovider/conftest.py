from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mockprovider import MockProvider


@pytest.fixture(scope="session")
def _mock_server() -> Iterator[MockProvider]:
    server = MockProvider().start()
    yield server
    server.stop()


@pytest.fixture
def mock(_mock_server: MockProvider) -> MockProvider:
    _mock_server.reset()
    return _mock_server
