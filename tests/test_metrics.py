"""GET /metrics: who may read it, the scrape-time gauges, and (end to end, two uvicorn workers sharing a
PROMETHEUS_MULTIPROC_DIR) the gateway's counters and histograms summed across workers. Every scrape is
read back with prometheus_client's own parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings as SettingsWrapper

from billing.gate import keys as gate_keys
from billing.models import TopUp
from common import metrics as defs
from common.money import usd_to_nanos
from common.redis import sync_redis
from proxy.health import keys as health_keys
from tests.e2e.support import (
    Gateway,
    World,
    _mock_server,  # noqa: F401  (fixture)
    gateway_env,
    mock_provider,  # noqa: F401  (fixture)
    running_gateway,
    world,  # noqa: F401  (fixture)
)
from tests.mockprovider import MockProvider
from tests.support import Triad

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample, keyed by (sample name, labels): the exposition as Prometheus itself would read it."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


# --- who may read it ---------------------------------------------------------------------------------


def test_loopback_clients_read_it_and_others_get_404(db: None, settings: SettingsWrapper) -> None:
    settings.METRICS_TOKEN = ""
    c = Client()
    ok = c.get("/metrics")
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")
    assert "usage_queue_depth" in {f.name for f in text_string_to_metric_families(ok.content.decode())}
    assert c.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
    # Relayed by a proxy on the same machine: it was for someone else.
    assert c.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 404
    # No token configured: a bearer header opens nothing.
    assert c.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_others_need_the_bearer_token_when_it_is_set(db: None, settings: SettingsWrapper) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    c = Client()
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert c.get("/metrics", **remote).status_code == 404
    assert c.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **remote).status_code == 404
    assert c.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-metrics-token", **remote).status_code == 404
    ok = c.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **remote)
    assert ok.status_code == 200
    assert parse(ok.content.decode())
    assert c.post("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **remote).status_code == 405


# --- scrape-time gauges --------------------------------------------------------------------------------


def test_it_reads_queue_breakers_dead_letters_and_payments_when_scraped(triad: Triad) -> None:
    from django.apps import apps

    r = sync_redis()
    old_ms = int(time.time() * 1000) - 42_000
    r.xadd(gate_keys.stream(0), {"c": "1", "e": "{}"}, id=f"{old_ms}-0")
    r.xadd(gate_keys.stream(1), {"c": "1", "e": "{}"})
    now_ms = time.time() * 1000
    r.hset(health_keys.endpoint(1), mapping={"o": 0})
    r.hset(health_keys.endpoint(2), mapping={"o": now_ms + 60_000})
    r.hset(health_keys.endpoint(3), mapping={"o": now_ms - 1_000})
    r.hset(health_keys.record_keys(3)[1], mapping={"1": 1})  # a side hash of the same endpoint: not another breaker
    TopUp.objects.create(organization=triad.org, credit_nanos=usd_to_nanos(10), fee_nanos=0, status=TopUp.Status.PAID)
    TopUp.objects.create(organization=triad.org, credit_nanos=usd_to_nanos(3), fee_nanos=0)
    dead = apps.get_model("billing", "UsageDeadLetter")
    dead.objects.create(
        generation_id="gen-dead",
        organization_id=triad.org.pk,
        msg_id="1-0",
        charge_nanos=5,
        payload=b"{}",
        error="boom",
    )

    samples = parse(Client().get("/metrics").content.decode())
    assert value(samples, "usage_queue_depth") == 2
    assert 41 <= value(samples, "settlement_lag_seconds") < 120
    assert value(samples, "circuit_breakers", state="closed") == 1
    assert value(samples, "circuit_breakers", state="open") == 1
    assert value(samples, "circuit_breakers", state="half_open") == 1
    assert value(samples, "usage_dead_letters") == 1
    assert value(samples, "payments_processed_total", method="card_checkout") == 1
    assert value(samples, "payments_credited_usd_total", method="card_checkout") == 10
    assert value(samples, "payments", method="card_checkout", status="pending") == 1


def test_labels_never_name_a_key_an_organization_or_a_user(triad: Triad) -> None:
    forbidden = {"key", "api_key", "org", "organization", "organization_id", "user", "model"}
    for metric in (
        defs.REQUESTS,
        defs.REQUEST_LATENCY,
        defs.TTFT,
        defs.UPSTREAM_ATTEMPTS,
        defs.UPSTREAM_ATTEMPT_LATENCY,
        defs.FAILOVERS,
        defs.ADMISSIONS,
        defs.CELERY_TASKS,
    ):
        assert not forbidden & set(metric._labelnames), metric
    text = Client().get("/metrics").content.decode()
    assert triad.org.slug not in text and str(triad.org.public_id) not in text


def test_celery_tasks_are_counted(triad: Triad) -> None:
    from organizations.tasks import audit_purge_task

    before = value(
        parse(Client().get("/metrics").content.decode()),
        "celery_tasks_total",
        task="organizations.audit_purge",
        state="SUCCESS",
    )
    audit_purge_task.apply()
    after = value(
        parse(Client().get("/metrics").content.decode()),
        "celery_tasks_total",
        task="organizations.audit_purge",
        state="SUCCESS",
    )
    assert after == before + 1


# --- end to end: two uvicorn workers, one exposition ---------------------------------------------------


@pytest.fixture
def two_workers(world: World, mock_provider: MockProvider, tmp_path: Path) -> Iterator[tuple[Gateway, Path]]:  # noqa: F811
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = gateway_env(world, mock_provider)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    with running_gateway(env, tmp_path / "gateway.log", "--workers", "2", timeout=60) as gw:
        yield gw, multiproc


def _chat(gw: Gateway, key: str, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello"}], **extra}
    return httpx.post(
        f"{gw.api_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


@pytest.mark.e2e
def test_two_workers_report_one_sum(two_workers: tuple[Gateway, Path], world: World) -> None:  # noqa: F811
    gw, multiproc = two_workers
    key = world.key.key
    with ThreadPoolExecutor(max_workers=8) as pool:
        oks = list(pool.map(lambda _: _chat(gw, key, "mock-openai/ok"), range(24)))
    assert [r.status_code for r in oks] == [200] * 24, oks[0].text
    streamed = _chat(gw, key, "mock-openai/ok", stream=True)
    assert streamed.status_code == 200
    failover = _chat(gw, key, "failover/503", provider={"order": ["mock-openai", "mock-anthropic"]})
    assert failover.status_code == 200, failover.text
    assert _chat(gw, "sk-or-v1-" + "0" * 64, "mock-openai/ok").status_code == 401
    assert _chat(gw, world.broke_key.key, "mock-openai/ok").status_code == 402

    scrape = httpx.get(f"{gw.url}/metrics", timeout=10)
    assert scrape.status_code == 200
    samples = parse(scrape.text)

    # Both workers wrote their own files; the exposition is their sum.
    pids = {p.stem.rsplit("_", 1)[-1] for p in multiproc.glob("counter_*.db")}
    assert len(pids) >= 2, sorted(p.name for p in multiproc.iterdir())
    assert value(samples, "gateway_requests_total", api="chat", status="200", provider="Mock OpenAI") == 25
    assert value(samples, "gateway_requests_total", api="chat", status="200", provider="Mock Anthropic") == 1
    assert value(samples, "gateway_requests_total", api="chat", status="401", provider="none") == 1
    assert value(samples, "gateway_requests_total", api="chat", status="402", provider="none") == 1
    assert value(samples, "gateway_admissions_total", result="admitted", reason="") == 26
    assert value(samples, "gateway_admissions_total", result="refused", reason="authentication") == 1
    assert value(samples, "gateway_admissions_total", result="refused", reason="payment_required") == 1
    assert value(samples, "gateway_request_duration_seconds_count", api="chat") == 28
    assert value(samples, "gateway_upstream_attempts_count", api="chat") == 26
    assert value(samples, "gateway_upstream_attempts_sum", api="chat") == 27  # one request failed over once
    assert value(samples, "gateway_failovers_total", provider="Mock OpenAI") == 1
    assert value(samples, "gateway_upstream_attempt_duration_seconds_count", provider="Mock OpenAI", outcome="503") == 1
    assert total(samples, "gateway_time_to_first_token_seconds_count") >= 1  # the stream's first token
    assert value(samples, "usage_queue_depth") >= 0  # scrape-time gauges come along with the workers' sums
