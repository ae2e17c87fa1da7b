"""Scenario names the catalog can use, and the mock as a standalone process (what the benchmark starts)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.mockprovider import DEFAULT_PIECES, Scenario, free_port, scenario_for_model
from tests.mockprovider.scenarios import flaky_fails

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("mock-ok", Scenario()),
        ("gpt-4o", Scenario()),
        ("mock-503", Scenario(status=503, retry_after="1")),
        ("mock-400", Scenario(status=400)),
        ("mock-cut-after-5", Scenario(cut_after=5)),
        ("mock-slow-first-byte", Scenario(first_byte_delay_ms=3000)),
        ("mock-slow-first-byte-250", Scenario(first_byte_delay_ms=250)),
        ("mock-slow-chunks-50", Scenario(chunk_delay_ms=50, chunks=20)),
        ("mock-tools+no-usage", Scenario(tools=1, usage=False)),
        ("vendor/mock-multi-tools", Scenario(tools=2)),
        ("mock-chunks-50", Scenario(chunks=50)),
        ("mock-flaky-50", Scenario(flaky_percent=50)),
    ],
)
def test_it_reads_the_scenario_from_the_upstream_model_name(model: str, expected: Scenario) -> None:
    assert scenario_for_model(model) == expected


def test_it_counts_tokens_exactly_per_piece_and_tool_call() -> None:
    assert Scenario().completion_tokens() == len(DEFAULT_PIECES)
    assert Scenario(chunks=50).completion_tokens() == 50
    assert Scenario(reasoning=True).completion_tokens() == 2 * len(DEFAULT_PIECES)
    assert Scenario(tools=2).content_pieces() == ()
    assert Scenario(empty=True, reasoning=True).completion_tokens() == 0


def test_it_spreads_flaky_failures_evenly() -> None:
    assert sum(flaky_fails(30, n) for n in range(1, 101)) == 30
    assert [flaky_fails(100, n) for n in range(1, 4)] == [True, True, True]
    assert not any(flaky_fails(0, n) for n in range(1, 50))


def test_it_refuses_unknown_override_fields() -> None:
    with pytest.raises(ValueError, match="unknown scenario fields"):
        Scenario().with_overrides({"stauts": 500})


@pytest.mark.e2e
def test_it_runs_as_a_standalone_process() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mockprovider", "--port", str(port), "--no-record"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/_health", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the mock did not start"
                time.sleep(0.1)
        res = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"Authorization": "Bearer k"},
            json={"model": "mock-ok", "messages": []},
        )
        assert res.json()["choices"][0]["message"]["content"] == "".join(DEFAULT_PIECES)
        assert httpx.get(f"http://127.0.0.1:{port}/_requests").json()["data"] == []  # --no-record
    finally:
        proc.terminate()
        proc.wait(10)
