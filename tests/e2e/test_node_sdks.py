"""Node's test runner over tests/node: `@openrouter/sdk` (zod-validated) and `@openrouter/ai-sdk-provider`
with `ai`, against the live gateway in front of the mock provider. Fails when any Node test fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from django.db import connection

from tests.e2e.support import Gateway, World, settle_usage

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


def test_openrouter_typescript_sdk_and_ai_sdk_provider(gateway: Gateway, world: World) -> None:
    _installed()
    settler = Settler()
    settler.start()
    try:
        result = subprocess.run(
            ["node", "--test", "--test-reporter=spec"],
            cwd=NODE_DIR,
            env={
                "PATH": os.environ.get("PATH", ""),
                "OPENROUTER_BASE_URL": gateway.api_url,
                "OPENROUTER_API_KEY": world.key.key,
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        settler.stopping.set()
        settler.join(10)
    report = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"node --test failed:\n{report[-8000:]}\n--- gateway log ---\n{gateway.log()[-3000:]}"
    )
    # Every Node test ran (a renamed or skipped one would otherwise pass unnoticed).
    totals = dict(re.findall(r"^\S+ (pass|fail|skipped) (\d+)$", report, re.MULTILINE))
    assert totals == {"pass": "8", "fail": "0", "skipped": "0"}, report[-3000:]
