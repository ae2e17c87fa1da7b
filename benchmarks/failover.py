"""Failover benchmark: what failing providers cost the client, in latency and in failed requests.

    .venv/bin/python benchmarks/failover.py [--requests 400]

Starts the mock provider and the gateway (PostgreSQL database `bench_failover`, Redis db 10, as in
benchmarks/gateway.py) with one model served by two providers, and prints:
  - the share of requests that succeed when one of the two providers fails 50% of the time (503),
    and how often the gateway had to fail over (the circuit breaker learns to avoid the flaky one);
  - the latency failover adds: p50/p99 of requests whose first provider answers 503 or refuses the
    connection, minus p50/p99 of requests served first time.
Sequential requests on one connection, loopback only; bounded by --requests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gateway as harness  # noqa: E402  (the shared process and database helpers)

REPO = HERE.parent
PY = sys.executable
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODELS = {
    "bench/duo": [("flaky", "mock-flaky-50"), ("steady", "mock-ok")],
    "bench/direct": [("steady", "mock-ok")],
    "bench/after-503": [("dead503", "mock-503"), ("steady", "mock-ok")],
    "bench/after-refused": [("refused", "mock-ok"), ("steady", "mock-ok")],
}


def _seed_main(mock_url: str, refused_url: str) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
    import django

    django.setup()
    from accounts.models import User
    from billing.services import credits_grant
    from common.money import NANOS_PER_USD
    from organizations.services import api_key_create, organization_create
    from proxy.models import Endpoint, Model, Provider

    providers = {
        slug: Provider.objects.create(
            slug=slug,
            name=slug.title(),
            base_url=(refused_url if slug == "refused" else mock_url) + "/v1",
            connect_timeout_ms=1_000,
        )
        for slug in ("flaky", "steady", "dead503", "refused")
    }
    for slug, served_by in MODELS.items():
        model = Model.objects.create(slug=slug, canonical_slug=slug, name=slug, context_length=8192)
        for provider_slug, upstream in served_by:
            Endpoint.objects.create(
                model=model,
                provider=providers[provider_slug],
                tag=provider_slug,
                upstream_model=upstream,
                context_length=8192,
                max_completion_tokens=256,
                prompt_nanos_per_mtok=1_000_000_000,
                completion_nanos_per_mtok=2_000_000_000,
            )
    owner = User.objects.create_user("failover@example.com", "correct horse battery")
    org = organization_create(name="Failover", owner=owner)
    credits_grant(organization=org, amount_nanos=10_000 * NANOS_PER_USD, reason="benchmark credit")
    print(json.dumps({"key": api_key_create(organization=org, name="bench", created_by=owner).key}))


def timed(port: int, auth: str, body: dict[str, object]) -> tuple[int, float, str]:
    started = time.perf_counter()
    status, data = harness.post(port, "/api/v1/chat/completions", body, auth)
    if status != 200 and os.environ.get("FAILOVER_DEBUG"):
        print(status, data[:300], file=sys.stderr)
    elapsed = (time.perf_counter() - started) * 1000
    provider = json.loads(data).get("provider", "") if status == 200 else ""
    return status, elapsed, provider


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] if len(values) > 1 else values[0]


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--seed":
        _seed_main(sys.argv[2], sys.argv[3])
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    procs = harness.Procs()
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        logs = Path(tmp)
        try:
            return run(args, logs, procs)
        finally:
            procs.stop_all()


def run(args: argparse.Namespace, logs: Path, procs: harness.Procs) -> int:
    db_url = harness.database_url(args.database_url, "bench_failover")
    harness.prepare_database(db_url, logs / "migrate.log")
    redis_url = "redis://127.0.0.1:6379/10"
    subprocess.run(["redis-cli", "-n", "10", "flushdb"], check=True, capture_output=True)
    mock_port, refused_port = harness.free_port(), harness.free_port()
    mock = procs.start([PY, "-m", "tests.mockprovider", "--port", str(mock_port), "--no-record"], log=logs / "mock.log")
    harness.wait_http(mock_port, "/_requests", mock, logs / "mock.log")
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url}
    env.update({f"{slug.upper()}_API_KEY": "sk-bench" for slug in ("flaky", "steady", "dead503", "refused")})
    seeded = subprocess.run(
        [PY, __file__, "--seed", f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{refused_port}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=True,
    )
    key = json.loads(seeded.stdout.decode().strip().splitlines()[-1])["key"]
    auth = f"Bearer {key}"
    ok_everywhere = True
    for label, extra in (
        # One organization sends all the traffic here, so let one tenant's failures count.
        ("circuit breaker on (default settings, HEALTH_CB_MIN_ORGS=1)", {"HEALTH_CB_MIN_ORGS": "1"}),
        (
            "circuit breaker off: every request pays for the failover",
            {
                "HEALTH_CB_FAILURES": "1000000000",
                "HEALTH_CB_MIN_REQUESTS": "1000000000",
                "HEALTH_OUTAGE_MIN_ERRORS": "1000000000",
            },
        ),
    ):
        subprocess.run(["redis-cli", "-n", "10", "flushdb"], check=True, capture_output=True)
        port = harness.free_port()
        gw = procs.start(
            [PY, "-m", "uvicorn", "openrouter_site.asgi:application", "--port", str(port), "--no-access-log"],
            log=logs / f"gateway-{port}.log",
            env={**env, **extra},
        )
        harness.wait_http(port, "/healthz", gw, logs / f"gateway-{port}.log")
        print(f"== {label}")
        ok_everywhere &= measure(port, auth, args.requests)
        gw.terminate()
        gw.wait(10)
    return 0 if ok_everywhere else 1


def measure(port: int, auth: str, requests: int) -> bool:
    def body(model: str, order: list[str] | None = None) -> dict[str, object]:
        payload: dict[str, object] = {"model": model, "messages": MESSAGES}
        if order:
            payload["provider"] = {"order": order}
        return payload

    for _ in range(20):  # warm caches and connections
        timed(port, auth, body("bench/direct"))
    results = [timed(port, auth, body("bench/duo")) for _ in range(requests)]
    ok = [r for r in results if r[0] == 200]
    if not ok:
        sys.exit(f"no request succeeded: {results[:3]}")
    served_by_flaky = sum(1 for r in ok if r[2] == "Flaky")
    direct = [timed(port, auth, body("bench/direct"))[1] for _ in range(requests // 2)]
    after_503 = [timed(port, auth, body("bench/after-503", ["dead503", "steady"]))[1] for _ in range(requests // 2)]
    after_refused = [
        timed(port, auth, body("bench/after-refused", ["refused", "steady"]))[1] for _ in range(requests // 2)
    ]
    print(f"one of two providers failing 50% of the time, {requests} sequential requests:")
    print(f"  succeeded: {len(ok)}/{len(results)} = {100 * len(ok) / len(results):.2f}%")
    print(f"  answered by the flaky provider: {served_by_flaky}, by the steady one: {len(ok) - served_by_flaky}")
    print(f"  latency p50 {pct([r[1] for r in ok], 50):.2f} ms, p99 {pct([r[1] for r in ok], 99):.2f} ms")
    print("first provider fails, second answers (provider.order pins the failing one first):")
    base50, base99 = pct(direct, 50), pct(direct, 99)
    print(f"  served first time:         p50 {base50:.2f} ms  p99 {base99:.2f} ms")
    for label, values in (("after an upstream 503", after_503), ("after connection refused", after_refused)):
        p50, p99 = pct(values, 50), pct(values, 99)
        print(
            f"  {label + ':':<27}p50 {p50:.2f} ms  p99 {p99:.2f} ms"
            f"   added p50 {p50 - base50:+.2f} ms  p99 {p99 - base99:+.2f} ms"
        )
    return len(ok) == len(results)


if __name__ == "__main__":
    sys.exit(main())
