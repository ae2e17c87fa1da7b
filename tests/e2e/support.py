"""End-to-end harness: the real gateway under uvicorn (a subprocess) in front of the local mock provider.

Shared by tests/e2e (whose conftest re-exports the fixtures), tests/billing/test_gate_e2e.py and the
in-process gateway tests (tests/proxy/gateway), which use the same catalog and credentials.

The subprocess sees the pytest test database (hence `transactional_db`: rows must be committed) and
the same Redis db. Every test gets a fresh gateway process, so in-process caches (keys, catalog,
health) never leak from one test into the next; the catalog is seeded before the process starts.

Catalog: providers "mock-openai", "mock-anthropic", "mock-gemini" (one per upstream format) and
"mock-down" (a port nobody listens on). For each of the three formats and each scenario below there
is a model "<provider>/<scenario>" with one endpoint whose upstream model is "mock-<scenario>", so
the model id alone picks both the wire format and the fault. "failover/*" models have two endpoints
for the failover tests, which pin the order with `provider.order`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai
import pytest
from django.conf import settings

from accounts.models import User
from billing.ledger import org_balance_nanos
from billing.models import Generation
from billing.pricing import PriceCard, Usage, cost_nanos
from billing.services import credits_grant
from common.money import NANOS_PER_USD
from organizations.models import Organization
from organizations.services import IssuedKey, api_key_create, organization_create
from proxy.models import Endpoint, Model, Provider
from tests.mockprovider import MockProvider, free_port

REPO = Path(__file__).resolve().parents[2]

# $1 per million prompt tokens, $2 per million completion tokens: mock-ok (17 + 6 tokens) costs 29,000 nanos.
PROMPT_NANOS_PER_MTOK = 1_000_000_000
COMPLETION_NANOS_PER_MTOK = 2_000_000_000
PRICE = PriceCard(prompt=PROMPT_NANOS_PER_MTOK, completion=COMPLETION_NANOS_PER_MTOK)
GRANT_NANOS = 5 * NANOS_PER_USD

FORMATS = {"mock-openai": "openai", "mock-anthropic": "anthropic", "mock-gemini": "gemini"}
PROVIDER_NAMES = {
    "mock-openai": "Mock OpenAI",
    "mock-anthropic": "Mock Anthropic",
    "mock-gemini": "Mock Gemini",
    "mock-down": "Mock Down",
    "mock-slow": "Mock Slow",
}
SCENARIOS = (
    "ok",
    "tools",
    "multi-tools",
    "reasoning",
    "json",
    "empty",
    "no-usage",
    "503",
    "429",
    "cut-after-3",
    "error-after-2",
    "slow-first-byte-2500",
    "slow-chunks-200",
    "chunks-50",
)
# model slug -> [(provider slug, upstream model)], tried in this order when the request pins it.
FAILOVER_MODELS = {
    "failover/503": [("mock-openai", "mock-503"), ("mock-anthropic", "mock-ok")],
    "failover/429": [("mock-openai", "mock-429"), ("mock-gemini", "mock-ok")],
    "failover/refused": [("mock-down", "mock-ok"), ("mock-openai", "mock-ok")],
    "failover/all-429": [("mock-openai", "mock-429"), ("mock-anthropic", "mock-429")],
    "failover/timeout": [("mock-slow", "mock-slow-first-byte-3000"), ("mock-gemini", "mock-ok")],
}
SUPPORTED = [
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "structured_outputs",
    "reasoning",
    "include_reasoning",
    "seed",
]


@pytest.fixture(scope="session")
def _mock_server() -> Iterator[MockProvider]:
    server = MockProvider().start()
    yield server
    server.stop()


@pytest.fixture
def mock_provider(_mock_server: MockProvider) -> MockProvider:
    _mock_server.reset()
    return _mock_server


@dataclass
class World:
    """What the gateway process will find in the database."""

    org: Organization
    owner: User
    key: IssuedKey
    broke_org: Organization
    broke_key: IssuedKey
    providers: dict[str, Provider] = field(default_factory=dict)


def _provider(slug: str, adapter: str, base_url: str, **extra: Any) -> Provider:
    return Provider.objects.create(slug=slug, name=PROVIDER_NAMES[slug], adapter=adapter, base_url=base_url, **extra)


def _model(slug: str, endpoints: list[tuple[Provider, str]]) -> Model:
    model = Model.objects.create(
        slug=slug,
        canonical_slug=slug,
        name=slug,
        context_length=8192,
        supported_parameters=SUPPORTED,
        input_modalities=["text"],
        output_modalities=["text"],
    )
    for provider, upstream in endpoints:
        Endpoint.objects.create(
            model=model,
            provider=provider,
            tag=provider.slug,
            upstream_model=upstream,
            context_length=8192,
            max_completion_tokens=1024,
            prompt_nanos_per_mtok=PROMPT_NANOS_PER_MTOK,
            completion_nanos_per_mtok=COMPLETION_NANOS_PER_MTOK,
            supported_parameters=SUPPORTED,
        )
    return model


def seed_catalog(mock: MockProvider, down_port: int) -> dict[str, Provider]:
    providers = {
        "mock-openai": _provider("mock-openai", "openai", mock.openai_base_url),
        "mock-anthropic": _provider("mock-anthropic", "anthropic", mock.url),
        "mock-gemini": _provider("mock-gemini", "gemini", mock.url),
        "mock-down": _provider("mock-down", "openai", f"http://127.0.0.1:{down_port}/v1", connect_timeout_ms=1000),
        # Same mock, but gives up on a silent upstream after half a second.
        "mock-slow": _provider("mock-slow", "openai", mock.openai_base_url, first_byte_timeout_ms=500),
    }
    for slug in FORMATS:
        for scenario in SCENARIOS:
            _model(f"{slug}/{scenario}", [(providers[slug], f"mock-{scenario}")])
    for slug, endpoints in FAILOVER_MODELS.items():
        _model(slug, [(providers[p], upstream) for p, upstream in endpoints])
    return providers


@pytest.fixture
def world(transactional_db: None, mock_provider: MockProvider) -> World:
    owner = User.objects.create_user("e2e-owner@example.com", "correct horse battery")
    org = organization_create(name="E2E Org", owner=owner)
    credits_grant(organization=org, amount_nanos=GRANT_NANOS, reason="e2e credit")
    key = api_key_create(organization=org, name="e2e", created_by=owner)
    broke_owner = User.objects.create_user("e2e-broke@example.com", "correct horse battery")
    broke_org = organization_create(name="Broke Org", owner=broke_owner)
    broke_key = api_key_create(organization=broke_org, name="broke", created_by=broke_owner)
    down_port = free_port()
    providers = seed_catalog(mock_provider, down_port)
    return World(org=org, owner=owner, key=key, broke_org=broke_org, broke_key=broke_key, providers=providers)


def _test_database_url() -> str:
    """DATABASE_URL with the database name swapped for the test database pytest-django created."""
    if not os.environ.get("DATABASE_URL") or not settings.REDIS_URL:
        # The gateway is another process: it can only share PostgreSQL and Redis, not SQLite or memory.
        pytest.fail("end-to-end tests need DATABASE_URL (PostgreSQL) and REDIS_URL")
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + str(settings.DATABASES["default"]["NAME"])))


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def provider_env(world: World, mock: MockProvider) -> dict[str, str]:
    """The mock providers' credentials: environment for a gateway process, `settings.PROVIDER_ENV` in process."""
    return {
        "MOCK_OPENAI_BASE_URL": mock.openai_base_url,
        "MOCK_OPENAI_API_KEY": "sk-upstream-openai",
        "MOCK_ANTHROPIC_BASE_URL": mock.url,
        "MOCK_ANTHROPIC_API_KEY": "sk-upstream-anthropic",
        "MOCK_GEMINI_BASE_URL": mock.url,
        "MOCK_GEMINI_API_KEY": "sk-upstream-gemini",
        "MOCK_DOWN_BASE_URL": world.providers["mock-down"].base_url,
        "MOCK_DOWN_API_KEY": "sk-upstream-down",
        "MOCK_SLOW_BASE_URL": mock.openai_base_url,
        "MOCK_SLOW_API_KEY": "sk-upstream-slow",
    }


def gateway_env(world: World, mock: MockProvider) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="openrouter_site.settings",
        DATABASE_URL=_test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="WARNING",
        **provider_env(world, mock),
    )
    return env


UVICORN = (sys.executable, "-m", "uvicorn", "openrouter_site.asgi:application", "--host", "127.0.0.1")
UVICORN_FLAGS = ("--no-access-log", "--lifespan", "on", "--timeout-graceful-shutdown", "2")


def spawn_gateway(
    env: dict[str, str], log_path: Path, *args: str, port: int | None = None, timeout: float = 30.0
) -> Gateway:
    """The site under uvicorn (on a free port unless given), started and ready; the log appends."""
    port = port or free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*UVICORN, "--port", str(port), *UVICORN_FLAGS, *args],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gw = Gateway(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        wait_ready(gw, timeout=timeout)
    except BaseException:
        stop_gateway(gw)
        raise
    return gw


def stop_gateway(gw: Gateway) -> None:
    if gw.process.poll() is None:
        gw.process.terminate()
        try:
            gw.process.wait(15)
        except subprocess.TimeoutExpired:
            gw.process.kill()
            gw.process.wait(5)


@contextmanager
def running_gateway(
    env: dict[str, str], log_path: Path, *args: str, port: int | None = None, timeout: float = 30.0
) -> Iterator[Gateway]:
    gw = spawn_gateway(env, log_path, *args, port=port, timeout=timeout)
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture
def gateway(world: World, mock_provider: MockProvider, tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(gateway_env(world, mock_provider), tmp_path / "gateway.log") as gw:
        yield gw


def wait_ready(gw: Gateway, timeout: float = 30.0) -> None:
    """Ready when the completions route answers (a GET gets 405 without touching the database)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.process.poll() is not None:
            pytest.fail(f"the gateway exited with {gw.process.returncode}:\n{gw.log()[-4000:]}")
        try:
            httpx.get(f"{gw.api_url}/chat/completions", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"the gateway did not start within {timeout}s:\n{gw.log()[-4000:]}")


@pytest.fixture
def client(gateway: Gateway, world: World) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.api_url, api_key=world.key.key, max_retries=0, timeout=30) as sdk:
        yield sdk


@pytest.fixture
def openrouter_client(gateway: Gateway, world: World) -> Iterator[Any]:
    from openrouter import OpenRouter

    with OpenRouter(api_key=world.key.key, server_url=gateway.api_url, timeout_ms=30_000) as sdk:
        yield sdk


# --- Settlement and assertions ---------------------------------------------------------------------


def settle_usage() -> None:
    """Run the settlement task in this process (the task Celery beat schedules every second), synchronously."""
    from billing.tasks import settle_usage as task

    assert task.name == "billing.settle_usage"
    task()


def generation(generation_id: str, timeout: float = 10.0) -> Generation:
    """The generation record, once the gateway has queued its usage event and settlement ran."""
    deadline = time.monotonic() + timeout
    while True:
        settle_usage()
        row = Generation.objects.filter(generation_id=generation_id).first()
        if row is not None:
            return row
        if time.monotonic() > deadline:
            pytest.fail(f"no generation record for {generation_id} after {timeout}s")
        time.sleep(0.1)


def no_generation(generation_id: str, wait: float = 1.0) -> None:
    """Assert nothing was recorded (and so nothing charged) for a request that produced nothing."""
    time.sleep(wait)
    settle_usage()
    assert not Generation.objects.filter(generation_id=generation_id).exists()


def expected_cost(prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0) -> int:
    return cost_nanos(
        Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, reasoning_tokens=reasoning_tokens),
        PRICE,
    )


def assert_charged(world: World, gen: Generation, nanos: int) -> None:
    """The record's cost is the expected amount and the org's ledger balance moved by exactly that."""
    assert gen.cost_nanos == nanos
    assert org_balance_nanos(world.org) == GRANT_NANOS - nanos


def usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD
