"""A revoked key stops working on every gateway process at once, not when a cache entry expires.

Issue: 619 requests succeeded after the API had answered 200 to the delete, for up to ~3 s per
process. The gateway here is a separate uvicorn process; the revocation happens in this one.
"""

from __future__ import annotations

import time

import httpx
import pytest

from organizations.services import api_key_delete, api_key_update
from tests.e2e.support import Gateway, World

pytestmark = pytest.mark.e2e
BODY = {"model": "mock-openai/ok", "messages": [{"role": "user", "content": "hi"}]}


def _status(gateway: Gateway, key: str) -> int:
    res = httpx.post(f"{gateway.api_url}/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"})
    return res.status_code


def _seconds_until_refused(gateway: Gateway, key: str, limit: float = 2.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if _status(gateway, key) == 401:
            return time.monotonic() - started
    pytest.fail(f"the key still worked {limit}s after it was revoked")


def test_a_disabled_key_is_refused_within_a_fraction_of_a_second(gateway: Gateway, world: World) -> None:
    assert _status(gateway, world.key.key) == 200  # now cached in the gateway process
    api_key_update(api_key=world.key.api_key, disabled=True)
    assert _seconds_until_refused(gateway, world.key.key) < 0.5
    assert {_status(gateway, world.key.key) for _ in range(5)} == {401}
    # And re-enabling it is just as prompt.
    api_key_update(api_key=world.key.api_key, disabled=False)
    assert _status(gateway, world.key.key) == 200


def test_a_deleted_key_is_refused_within_a_fraction_of_a_second(gateway: Gateway, world: World) -> None:
    assert _status(gateway, world.key.key) == 200
    api_key_delete(api_key=world.key.api_key)
    assert _seconds_until_refused(gateway, world.key.key) < 0.5
