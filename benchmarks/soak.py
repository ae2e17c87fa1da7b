"""Soak: the gateway's memory over a million requests, with settlement running as in production.

    .venv/bin/python benchmarks/soak.py [--requests 1000000] [--segment 30] [--connections 64]

The same processes as benchmarks/gateway.py (its helpers start them): the nginx upstream mock,
a private redis-server, one uvicorn worker on core 0 over a fresh database (`soak`), plus one
settlement worker loop (benchmarks/settle_drain.py --follow) on core 1 with wrk, so usage events
are posted to PostgreSQL while the load runs and the Redis usage stream stays short.

wrk runs in segments of `--segment` seconds (three non-streaming segments, then one 50-chunk
streaming segment, repeated) until `--requests` have been answered. After each segment it prints
the gateway's resident memory (VmRSS), Redis memory and the usage stream's backlog. At the end:
RSS growth from the first sample after `--warmup` requests and one segment of each mode to the
last (target: under 5%), the failures, the settlement worker's CPU per event, and what Redis holds
per request once settlement has caught up. Exit status 1 if RSS grew 5% or more, or any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gateway as bench

RSS_GROWTH_LIMIT = 0.05


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def redis_state(client: Any) -> tuple[int, int]:
    """(used_memory bytes, usage events waiting in the streams)."""
    used = int(client.info("memory")["used_memory"])
    backlog = sum(int(client.xlen(key)) for key in client.scan_iter(count=1000, _type="STREAM"))
    return used, backlog


def run(args: argparse.Namespace, tmp: Path, procs: bench.Procs) -> int:
    sys.path.insert(0, str(bench.REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
    from common.redis import sync_redis

    _, mock_url, stream_path = bench.start_upstream(procs, tmp)
    redis_url = bench.start_redis(procs, "gateway", tmp)
    row = bench.start_gateway(
        procs,
        bench.REPO,
        "gateway",
        args.database,
        redis_url,
        mock_url,
        tmp,
        stream_base=mock_url + stream_path.removesuffix("/chat/completions"),
    )
    assert row.pid is not None
    for mode in ("nonstream", "stream"):
        status, data = bench.post(row.port, row.path_for(mode), row.body(mode), row.auth)
        if status != 200:
            sys.exit(f"gateway {mode}: {status} {data[:300]!r}\nlogs: {tmp}")
    worker_argv = ["taskset", "-c", bench.CLIENT_CPU, bench.PY, str(bench.HERE / "settle_drain.py"), "--follow"]
    worker_log = tmp / "settle.log"
    worker = procs.start(worker_argv, log=worker_log, env=row.env)
    redis = sync_redis(redis_url)

    print(f"soak: {args.requests:,} requests in {args.segment}s segments at {args.connections} connections")
    head = f"{'requests':>10} {'mode':>9} {'req/s':>7} {'p99 ms':>7} {'RSS MiB':>8} {'Redis MiB':>9} {'backlog':>8}"
    print(head + f" {'failed':>6}")
    served = failures = 0
    warm_rss = 0
    samples: list[tuple[int, int]] = []
    segment = 0
    started = time.monotonic()
    while served < args.requests:
        mode = "stream" if segment % 4 == 3 else "nonstream"
        segment += 1
        result = bench.run_wrk(
            row.url(mode), row.body(mode), auth=row.auth, connections=args.connections, seconds=args.segment, tally=True
        )
        served += result.requests
        failures += result.failures
        rss = rss_kib(row.pid)
        used, backlog = redis_state(redis)
        samples.append((served, rss))
        # The reference comes after both modes have run once: the first streamed segment allocates
        # what only streaming uses (a step of ~6 MiB), which is warm-up, not growth.
        if not warm_rss and served >= args.warmup and segment >= 4:
            warm_rss = rss
        print(
            f"{served:>10,} {mode:>9} {result.rps:>7,.0f} {result.p99_ms:>7.1f} {rss / 1024:>8.1f} {used / 2**20:>9.1f}"
            f" {backlog:>8,}"
            f" {result.failures:>6}" + (f"  {result.detail}" if result.detail else ""),
            flush=True,
        )
    elapsed = time.monotonic() - started

    # Let settlement catch up, then stop the worker for its totals.
    deadline = time.monotonic() + 300
    while redis_state(redis)[1] and time.monotonic() < deadline:
        time.sleep(1)
    settled_used, backlog = redis_state(redis)
    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    totals = json.loads(worker_log.read_text().strip().splitlines()[-1])

    last_rss = samples[-1][1]
    growth = (last_rss - warm_rss) / warm_rss if warm_rss else float("nan")
    peak = max(r for n, r in samples if n >= args.warmup) if warm_rss else last_rss
    print(f"\n{served:,} requests in {elapsed / 60:.1f} min, {failures} failed")
    print(
        f"gateway RSS: {warm_rss / 1024:.1f} MiB after {args.warmup:,} requests (warm-up), {last_rss / 1024:.1f} MiB "
        f"at the end ({growth:+.2%}), peak after warm-up {peak / 1024:.1f} MiB"
    )
    events, cpu_s = int(totals["events"]), float(totals["cpu_s"])
    print(
        f"settlement worker: {events:,} events posted, CPU {1000 * cpu_s / max(events, 1):.3f} ms/event "
        f"({events / cpu_s if cpu_s else 0:,.0f} events/s per worker core); {backlog:,} left in the stream"
    )
    footprint, keys, _ = bench.redis_footprint(redis)
    print(
        f"Redis once settled: used_memory {settled_used / 2**20:.1f} MiB; the db's keys hold {footprint:,} bytes in "
        f"{keys:,} keys = {footprint / served:.1f} bytes per request served (markers that expire on their TTL)"
    )
    ok = warm_rss > 0 and growth < RSS_GROWTH_LIMIT and failures == 0 and backlog == 0
    print(f"{'PASS' if ok else 'FAIL'}  RSS growth after warm-up < {RSS_GROWTH_LIMIT:.0%}, no failures, stream drained")
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    data = {
        "when": stamp,
        "requests": served,
        "failures": failures,
        "minutes": round(elapsed / 60, 2),
        "rss_kib": {"warm": warm_rss, "last": last_rss, "peak_after_warmup": peak, "growth": growth},
        "samples": [{"requests": n, "rss_kib": r} for n, r in samples],
        "settlement": totals,
        "redis_settled": {"used_memory": settled_used, "db_bytes": footprint, "db_keys": keys},
        "passed": ok,
    }
    (out / f"soak-{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument(
        "--warmup",
        type=int,
        default=100_000,
        help="requests (and one segment of each mode) before the reference",
    )
    parser.add_argument("--segment", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database", default="soak")
    parser.add_argument("--results", default=str(bench.HERE / "results"))
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "nginx", "redis-server") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run scripts/system-deps.sh")
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    procs = bench.Procs()
    try:
        return run(args, tmp, procs)
    finally:
        procs.stop_all()
        print(f"logs: {tmp}")


if __name__ == "__main__":
    sys.exit(main())
