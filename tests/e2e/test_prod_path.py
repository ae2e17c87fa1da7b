"""The production path without Docker: compose.yaml's own commands, run as local processes.

Every service command in compose.yaml (web with 2 uvicorn workers after migrate and catalog_load, the
worker, the payments worker, beat) is started from one env file against this machine's PostgreSQL
(the test database) and Redis. Then a completion goes through the web processes, settlement happens
only through beat and the worker (this test never settles in process), and a signed Stripe top-up
webhook is posted to the web processes. The commands come from compose.yaml itself, so the file and
the code cannot drift apart unnoticed (a queue no worker consumes, a task nobody routes).

The container build itself is `scripts/container_check.sh` (it builds when an engine answers, and
says why not otherwise); the last test runs it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from billing.ledger import org_balance_nanos
from billing.models import Generation, TopUp
from billing.payments.quotes import card_fee_nanos
from common.money import usd_to_nanos
from openrouter_site.celery import app as celery_app
from tests.billing.payments.support import WEBHOOK_SECRET, sign, stripe_event
from tests.e2e.support import GRANT_NANOS, REPO, World, _test_database_url, expected_cost, provider_env
from tests.mockprovider import MockProvider, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.worker]

COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES = ("web", "worker", "worker-payments", "beat")


def _command(service: str) -> str:
    command = COMPOSE["services"][service]["command"]
    return command if isinstance(command, str) else shlex.join(command)


def test_compose_workers_consume_exactly_the_queues_tasks_are_routed_to() -> None:
    consumed: set[str] = set()
    for service in ("worker", "worker-payments"):
        args = shlex.split(_command(service))
        consumed |= set(args[args.index("-Q") + 1].split(","))
    declared = {q.name for q in celery_app.conf.task_queues}
    assert consumed == declared, "a queue nobody consumes, or a worker waiting on a queue nothing uses"
    routed = {route["queue"] for route in celery_app.conf.task_routes.values()} | {celery_app.conf.task_default_queue}
    assert routed <= consumed


@dataclass
class Stack:
    url: str
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]

    def log(self, service: str) -> str:
        return self.logs[service].read_text(errors="replace")

    def dump(self) -> str:
        return "\n".join(f"--- {s} ---\n{self.log(s)[-3000:]}" for s in self.logs)


def _env_file(path: Path, world: World, mock: MockProvider) -> Path:
    """The one env file every process reads (compose: env_file: .env)."""
    lines = {
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "SECRET_KEY": "prod-path-test-secret-key-0123456789abcdef",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STRIPE_SECRET_KEY": "sk_test_prod_path",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SETTLEMENT_CONSUMER": "prod-path",
        "LOG_LEVEL": "INFO",
        **provider_env(world, mock),
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
    return path


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _local(service: str, port: int, tmp: Path) -> list[str]:
    """compose's command for this machine: our port and paths; one process per Celery worker (2 CPUs)."""
    command = _command(service).replace("--port 8000", f"--port {port}").replace("/app/var/", f"{tmp}/")
    command = command.replace("python manage.py", f"{sys.executable} manage.py")
    command = command.replace("uvicorn openrouter_site", f"{sys.executable} -m uvicorn openrouter_site")
    command = command.replace("--host 0.0.0.0", "--host 127.0.0.1")
    if command.startswith("celery "):
        command = f"{sys.executable} -m {command}"
        if " worker " in command:
            command += " --concurrency 1 --without-gossip --without-mingle"
    return shlex.split(command)  # web: ["sh", "-c", "migrate && catalog_load && uvicorn ..."], as compose runs it


@pytest.fixture
def stack(world: World, mock_provider: MockProvider, tmp_path: Path) -> Iterator[Stack]:
    env_file = _env_file(tmp_path / "env", world, mock_provider)
    # Only the env file, not this test's environment (PATH and HOME aside): what the processes know
    # comes from one place, as in compose.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **_read_env_file(env_file)}
    port = free_port()
    stack = Stack(url=f"http://127.0.0.1:{port}", processes={}, logs={})
    try:
        for service in SERVICES:
            stack.logs[service] = tmp_path / f"{service}.log"
            with stack.logs[service].open("wb") as log:
                stack.processes[service] = subprocess.Popen(
                    _local(service, port, tmp_path),
                    cwd=REPO,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # `sh -c` and uvicorn's workers stop together
                )
        _wait(lambda: _ready(stack), 120, "the web processes to answer /readyz", stack)
        yield stack
    finally:
        for process in stack.processes.values():
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _ready(stack: Stack) -> bool:
    for service, process in stack.processes.items():
        if process.poll() is not None:
            pytest.fail(f"{service} exited with {process.returncode}:\n{stack.dump()}")
    try:
        response = httpx.get(f"{stack.url}/readyz", timeout=2)
    except httpx.TransportError:
        return False
    return response.status_code == 200 and response.json()["checks"] == {"database": "ok", "redis": "ok"}


def _wait(check: Callable[[], bool], timeout: float, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}:\n{stack.dump()}")


def _paid_checkout(world: World, usd: int) -> tuple[TopUp, dict[str, Any]]:
    credit = usd_to_nanos(usd)
    topup = TopUp.objects.create(
        organization=world.org,
        created_by=world.owner,
        credit_nanos=credit,
        fee_nanos=card_fee_nanos(credit),
        stripe_session_id="cs_test_prod_path",
    )
    event = stripe_event(
        "checkout.session.completed",
        id=topup.stripe_session_id,
        amount_total=topup.total_nanos // 10_000_000,
        metadata={"org_id": str(world.org.pk), "topup_id": str(topup.public_id), "save_card": "0"},
    )
    return topup, event


def test_the_compose_processes_serve_settle_and_credit_a_top_up(stack: Stack, world: World) -> None:
    # 1. A completion through the two web workers, in front of the mock provider.
    with openai.OpenAI(base_url=f"{stack.url}/api/v1", api_key=world.key.key, max_retries=0, timeout=30) as sdk:
        reply = sdk.chat.completions.create(model="mock-openai/ok", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content

    # 2. Settlement: beat schedules billing.settle_usage, the worker runs it. Nothing here settles.
    _wait(lambda: Generation.objects.filter(generation_id=reply.id).exists(), 90, "beat + worker to settle", stack)
    cost = expected_cost(17, 6)
    assert Generation.objects.get(generation_id=reply.id).cost_nanos == cost
    assert org_balance_nanos(world.org) == GRANT_NANOS - cost

    # 3. A signed Stripe webhook for a paid checkout, posted to the web processes.
    topup, event = _paid_checkout(world, 10)
    body = json.dumps(event)
    response = httpx.post(
        f"{stack.url}/billing/stripe/webhook/",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body)},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "applied"
    topup.refresh_from_db()
    assert topup.status == TopUp.Status.PAID
    assert org_balance_nanos(world.org) == GRANT_NANOS - cost + usd_to_nanos(10)
    forged = httpx.post(
        f"{stack.url}/billing/stripe/webhook/",
        content=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": sign(body, secret="whsec_wrong")},
        timeout=30,
    )
    assert forged.status_code == 400

    # Beat runs the schedule there, so the web processes must not run it a second time.
    assert "in-process scheduler started" not in stack.log("web")
    assert "Scheduler: Sending due task settle-usage" in stack.log("beat")


def test_the_container_build_runs_or_says_why_not() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "container_check.sh")], capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("container-check: OK") or (
        last.startswith("container-check: SKIPPED: ") and len(last) > len("container-check: SKIPPED: ") + 10
    ), last
    print(last)  # visible with -s / in the CI log: a skip is never silent
