"""Node's test runner over tests/node: `@openrouter/sdk` (zod-validated) and `@openrouter/ai-sdk-provider`
with `ai`, against the live gateway in front of the mock provider. Fails when any Node test fails.

sdk.test.mjs runs against the plain gateway; web.test.mjs against one whose web search plugin asks
the SearXNG stand-in (tests/e2e/websearch.py), the AI SDK's `sources` checked against its pages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from billing.ledger import org_balance_nanos
from billing.models import Generation
from tests.e2e.support import GRANT_NANOS, Gateway, World, expected_cost, running_gateway, settle_usage
from tests.e2e.websearch import PAGES, QUESTION, StandIn, engines, search_price, web_gateway_env
from tests.mockprovider import DEFAULT_PIECES, PROMPT_TOKENS, MockProvider

__all__ = ["engines"]  # the search stand-ins' fixture, used below

pytestmark = pytest.mark.e2e

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def _installed() -> None:
    """CI installs the locked packages (scripts/system-deps.sh); a fresh checkout gets them here."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are required (scripts/system-deps.sh installs them)")
    if not (NODE_DIR / "node_modules" / "@openrouter" / "sdk").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True, timeout=600
        )


class Settler(threading.Thread):
    """Runs settlement every 200 ms, as Celery beat does, so `/generation` finds what Node asked for."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.wait(0.2):
                settle_usage()
        finally:
            connection.close()


def _node_test(script: str, gateway: Gateway, world: World, expected: int, **env: str) -> None:
    """Run one tests/node script against `gateway`; every one of its `expected` tests must pass."""
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", script],
        cwd=NODE_DIR,
        env={
            "PATH": os.environ.get("PATH", ""),
            "OPENROUTER_BASE_URL": gateway.api_url,
            "OPENROUTER_API_KEY": world.key.key,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"node --test {script} failed:\n{report[-8000:]}\n--- gateway log ---\n{gateway.log()[-3000:]}"
    )
    # Every Node test ran (a renamed or skipped one would otherwise pass unnoticed).
    totals = dict(re.findall(r"^\S+ (pass|fail|skipped) (\d+)$", report, re.MULTILINE))
    assert totals == {"pass": str(expected), "fail": "0", "skipped": "0"}, report[-3000:]


def test_openrouter_typescript_sdk_and_ai_sdk_provider(gateway: Gateway, world: World) -> None:
    _installed()
    settler = Settler()
    settler.start()
    try:
        _node_test("sdk.test.mjs", gateway, world, expected=8)
    finally:
        settler.stopping.set()
        settler.join(10)


def test_ai_sdk_provider_web_search_sources(
    world: World, mock_provider: MockProvider, engines: dict[str, StandIn], tmp_path: Path
) -> None:
    """Issue 17: the gateway's `url_citation` annotations are the AI SDK's `sources`, streamed or not."""
    _installed()
    pages = [{**page, "content": f"SearXNG snippet {i}"} for i, page in enumerate(PAGES)]
    with running_gateway(web_gateway_env(world, mock_provider, engines), tmp_path / "gateway.log") as gw:
        _node_test("web.test.mjs", gw, world, expected=5, WEB_SEARCH_PAGES=json.dumps(pages))

    # One search per Node test, for the prompt the AI SDK sent, and the results reached the model.
    assert [r["params"] for r in engines["searxng"].requests] == [{"q": QUESTION, "format": "json"}] * 5
    assert not engines["tavily"].requests
    assert len(mock_provider.requests) == 5
    for upstream in mock_provider.requests:
        assert PAGES[0]["url"] in json.dumps(upstream.body)

    # Each answer was charged the model and its search: max_results 2, 3, :online (3 found), :online, 1.
    searches = search_price(2) + search_price(3) + 2 * search_price(len(PAGES)) + search_price(1)
    total = 5 * expected_cost(PROMPT_TOKENS, len(DEFAULT_PIECES)) + searches
    deadline = time.monotonic() + 10
    while Generation.objects.filter(organization=world.org).count() < 5 and time.monotonic() < deadline:
        settle_usage()
        time.sleep(0.1)
    assert sum(g.cost_nanos for g in Generation.objects.filter(organization=world.org)) == total
    assert org_balance_nanos(world.org) == GRANT_NANOS - total
