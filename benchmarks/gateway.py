"""Gateway benchmark: the gateway against nginx proxy_pass and the mock reached directly, in one run.

    .venv/bin/python benchmarks/gateway.py [--duration 10] [--connections 64]     (or: make bench)
    .venv/bin/python benchmarks/gateway.py --compare /path/to/older/checkout      (A/B in one run)

What it starts, all on loopback, all stopped at the end:
  - the upstream mock on the harness core (`taskset -c 1`): by default nginx serving fixed bodies
    (benchmarks/nginx-mock.conf.tmpl: the non-streaming answer and the 50-chunk stream, captured
    from tests/mockprovider at start), so the upstream is never what limits a row; `--upstream
    python` uses tests/mockprovider itself (request log off);
  - nginx, one worker pinned with `taskset -c 0`, proxy_pass to the mock (keep-alive, no buffering);
  - the gateway: uvicorn (or `--server granian`), one worker, pinned with `taskset -c 0`, on
    PostgreSQL (a fresh database, default `bench`, migrated) and its own redis-server (no
    persistence; `--shared-redis` uses db 10 of the shared one instead), with seeded providers, two
    models, an organization with credit and an API key, so auth, credit reservation and usage
    recording all run on every request exactly as in production;
  - wrk pinned with `taskset -c 1`, and the time-to-first-token client pinned to core 1 too.

It prints requests/s at 64 connections, latency p50/p99 at 1 connection (added = row minus direct),
time to first token, and for the gateway rows the server's CPU time per request (read from /proc:
the number least disturbed by other load on the machine) and its Redis round trips and script
calls per request (its own Redis server's INFO counters), how busy each core was in each row, then
ratios to nginx and PASS/FAIL against the targets. Then one settlement worker loop
(benchmarks/settle_drain.py) on core 0 posts what the gateway queued, and the run prints its CPU per
event. The whole run is written as JSON under benchmarks/results/. `--profile DIR` samples each
gateway's throughput runs with py-spy. Exit status 1 if a target is missed. Method: docs/benchmarks.md.

`--compare DIR` starts a second gateway from another checkout (its own database and Redis db, the
same mock, the same harness) and measures it as a "baseline" row right after this tree's gateway,
so a change is judged against the code it replaces in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PY = sys.executable
SERVER_CPU = "0"
CLIENT_CPU = "1"

# Targets (issue 14), as ratios to nginx measured in the same run where they are rates: see
# docs/benchmarks.md for the reference numbers they come from.
TARGET_NONSTREAM_RATIO = 0.045
TARGET_STREAM_RATIO = 0.05
TARGET_ADDED_P50_MS = 0.7
TARGET_ADDED_TTFT_MS = 0.7
TARGET_CPU_MS = 0.5  # gateway CPU per non-streaming request, every governance feature on

MESSAGES = [{"role": "user", "content": "Say hello"}]
UPSTREAM = {"nonstream": "mock-ok", "stream": "mock-chunks-50"}
GATEWAY_MODELS = {"nonstream": "bench/fast", "stream": "bench/stream50"}
CONTENT = re.compile(rb'"content":\s*"[^"]')


# --- processes -------------------------------------------------------------------------------------


@dataclass
class Procs:
    """Every process this run started, stopped (by pid) when the run ends, however it ends."""

    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(
        self, argv: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path = REPO
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        # One at a time, newest first: a gateway flushes its buffered health records to its Redis
        # on shutdown, so that Redis must outlive it.
        for proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing answered on port {port} within {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def post(port: int, path: str, body: dict[str, Any], auth: str = "") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    conn.request("POST", path, json.dumps(body), headers)
    res = conn.getresponse()
    data = res.read()
    conn.close()
    return res.status, data


# --- database, seed --------------------------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path="/" + name))


def prepare_database(url: str, log: Path, repo: Path = REPO) -> None:
    """A fresh, migrated database: the run never depends on (or damages) anyone else's data."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(database_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "openrouter_site.settings"}
    with log.open("wb") as out:
        argv = [PY, "manage.py", "migrate", "--noinput", "--skip-checks"]
        subprocess.run(argv, cwd=repo, env=env, stdout=out, stderr=out, check=True)


def seed(env: dict[str, str], mock_url: str, repo: Path = REPO) -> str:
    out = subprocess.run(
        [PY, str(Path(__file__).resolve()), "--seed", mock_url], cwd=repo, env=env, capture_output=True, check=False
    )
    if out.returncode != 0:
        sys.exit(f"seeding failed:\n{out.stderr.decode(errors='replace')[-3000:]}")
    return str(json.loads(out.stdout.decode().strip().splitlines()[-1])["key"])


def _seed_main(mock_url: str) -> None:
    """Runs in a subprocess with the bench DATABASE_URL: one provider, two models, an org with credit, a key."""
    sys.path.insert(0, os.getcwd())  # the checkout being measured (see --compare), not necessarily this one
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
    import django

    django.setup()
    from accounts.models import User
    from billing.services import credits_grant
    from organizations.services import api_key_create, organization_create
    from proxy.models import Endpoint, Model, Provider

    provider = Provider.objects.create(
        slug="bench-mock", name="Bench Mock", adapter="openai", base_url=mock_url + "/v1"
    )
    # The nginx mock serves the stream at its own path: the stream model gets a provider pointing there.
    stream_base = os.environ.get("BENCH_STREAM_BASE_URL") or mock_url + "/v1"
    providers = {"nonstream": provider, "stream": provider}
    if stream_base != mock_url + "/v1":
        providers["stream"] = Provider.objects.create(
            slug="bench-mock-sse", name="Bench Mock SSE", adapter="openai", base_url=stream_base
        )
    for kind, slug in GATEWAY_MODELS.items():
        model = Model.objects.create(slug=slug, canonical_slug=slug, name=slug, context_length=8192)
        Endpoint.objects.create(
            model=model,
            provider=providers[kind],
            tag="bench-mock",
            upstream_model=UPSTREAM[kind],
            context_length=8192,
            max_completion_tokens=256,
            prompt_nanos_per_mtok=1_000_000_000,
            completion_nanos_per_mtok=2_000_000_000,
        )
    owner = User.objects.create_user("bench@example.com", "correct horse battery")
    org = organization_create(name="Bench", owner=owner)
    # $100,000 in nano-dollars, spelled out so that an older checkout (see --compare) seeds too.
    credits_grant(organization=org, amount_nanos=100_000 * 10**9, reason="benchmark credit")
    print(json.dumps({"key": api_key_create(organization=org, name="bench", created_by=owner).key}))


# --- measurements ----------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int  # non-2xx, socket errors, and bodies missing what the mode must contain
    requests: int = 0  # answered in the run, as wrk counts them
    detail: str = ""  # what the failures were, when there were any


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unparsable wrk duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(
    url: str,
    body: dict[str, Any],
    *,
    auth: str,
    connections: int,
    seconds: int,
    expect: str = "",
    tally: bool = False,
    save: Path | None = None,
) -> WrkResult:
    env = {**os.environ, "WRK_BODY": json.dumps(body), "WRK_AUTH": auth, "WRK_EXPECT": expect}
    env["WRK_TALLY"] = "1" if tally else "0"
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(HERE / "wrk" / "chat.lua"), url]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    if save is not None:
        save.write_text(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    failures = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"bad (\d+)"):
        match = re.search(pattern, out)
        failures += int(match.group(1)) if match else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        failures += sum(int(g) for g in errors.groups())
    detail = "; ".join(
        ([errors.group(0)] if errors else [])
        + [f"HTTP {code}: {n}" for code, n in re.findall(r"status (\d+) (\d+)", out) if code != "200"]
        + [f"bad bodies: {m.group(1)}" for m in [re.search(r"bad (\d+)", out)] if m and m.group(1) != "0"]
    )
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return WrkResult(rps=rps, p50_ms=p50, p99_ms=p99, failures=failures, detail=detail, requests=requests)


def measure_ttft(port: int, path: str, body: dict[str, Any], auth: str, requests: int) -> float:
    """Median time from sending a streaming request to receiving its first content delta, one connection."""
    os.sched_setaffinity(0, {int(CLIENT_CPU)})
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    payload = json.dumps(body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: list[float] = []
    try:
        for _ in range(requests):
            started = time.perf_counter()
            conn.request("POST", path, payload, headers)
            res = conn.getresponse()
            seen = b""
            first: float | None = None
            while first is None:
                data = res.read1(65536)
                if not data:
                    break
                seen += data
                if CONTENT.search(seen):
                    first = time.perf_counter()
            res.read()  # finish the response so the connection is reused
            if res.status != 200 or first is None:
                sys.exit(f"TTFT request failed: {res.status} {seen[:300]!r}")
            samples.append((first - started) * 1000)
    finally:
        conn.close()
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return statistics.median(samples)


@dataclass
class Row:
    name: str
    port: int
    path: str
    auth: str
    models: dict[str, str]
    paths: dict[str, str] = field(default_factory=dict)  # per mode, when it differs from `path`
    tally: bool = False  # count statuses in the throughput runs too (cheap at a slow row's rate)
    pid: int | None = None  # the server process whose CPU time is charged to this row
    cpu_ms: dict[str, float] = field(default_factory=dict)  # server CPU per request, throughput runs
    thr: dict[str, WrkResult] = field(default_factory=dict)
    lat: dict[str, WrkResult] = field(default_factory=dict)
    ttft_ms: float = 0.0
    cores: dict[str, tuple[float, float]] = field(default_factory=dict)  # busy share of core 0, core 1
    redis_url: str = ""  # the gateway's own Redis server, whose counters are charged to this row
    redis: dict[str, tuple[float, float]] = field(default_factory=dict)  # (reads, script calls) per request
    env: dict[str, str] = field(default_factory=dict)  # a gateway's environment (database, Redis)
    settlement: dict[str, float] = field(default_factory=dict)  # measure_settlement()

    def body(self, mode: str) -> dict[str, Any]:
        return {"model": self.models[mode], "messages": MESSAGES, "stream": mode == "stream"}

    def path_for(self, mode: str) -> str:
        return self.paths.get(mode, self.path)

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.path_for(mode)}"


def measure(row: Row, args: argparse.Namespace, logs: Path) -> None:
    for mode in ("nonstream", "stream"):
        # Throughput runs count only statuses and socket errors: a Lua body check on every response
        # would make wrk itself the bottleneck of the fast rows. The 1-connection runs check bodies.
        expect = "[DONE]" if mode == "stream" else '"choices"'
        body = row.body(mode)
        slug = f"{logs}/wrk-{row.name.replace(' ', '-')}-{mode}"
        cpu_before, cores_before = cpu_seconds(row.pid), core_ticks()
        redis_before = redis_counters(row.redis_url)
        profiler = start_profile(row, mode, args) if args.profile and row.pid is not None else None
        row.thr[mode] = run_wrk(
            row.url(mode),
            body,
            auth=row.auth,
            connections=args.connections,
            seconds=args.duration,
            tally=row.tally,
            save=Path(f"{slug}-c{args.connections}.txt"),
        )
        served = row.thr[mode].rps * args.duration
        row.cores[mode] = core_busy(cores_before, core_ticks())
        if profiler is not None:
            profiler.wait(60)
            print(profile_summary(Path(str(profiler.args[-1]))), flush=True)
        if row.pid is not None and served:
            row.cpu_ms[mode] = (cpu_seconds(row.pid) - cpu_before) * 1000 / served
        if row.redis_url and served:
            after = redis_counters(row.redis_url)
            row.redis[mode] = ((after[0] - redis_before[0]) / served, (after[1] - redis_before[1]) / served)
        row.lat[mode] = run_wrk(
            row.url(mode),
            body,
            auth=row.auth,
            connections=1,
            seconds=args.latency_duration,
            expect=expect,
            save=Path(f"{slug}-c1.txt"),
        )
        rps, p50 = row.thr[mode].rps, row.lat[mode].p50_ms
        cpu = f"   server CPU {row.cpu_ms[mode]:.3f} ms/req" if mode in row.cpu_ms else ""
        c0, c1 = row.cores[mode]
        busy = f"   cores busy: 0 {c0:.0%}, 1 {c1:.0%}" + (" (core 0 saturated)" if c0 >= 0.95 else "")
        busy += " (core 1 saturated: the harness limits this row)" if c1 >= 0.95 else ""
        trips = ""
        if mode in row.redis:
            trips = f"   Redis per request: {row.redis[mode][0]:.2f} reads, {row.redis[mode][1]:.2f} scripts"
        print(f"  {row.name:<12} {mode:<9} {rps:>10,.0f} req/s   p50 {p50:.3f} ms{cpu}{busy}{trips}", flush=True)
        for label, result in (("64 conn", row.thr[mode]), ("1 conn", row.lat[mode])):
            if result.failures:
                print(f"    {label} failures: {result.failures} ({result.detail})", flush=True)
    row.ttft_ms = measure_ttft(row.port, row.path_for("stream"), row.body("stream"), row.auth, args.ttft_requests)


# Where a sampled stack spends its time: the first of these markers found in a frame names it.
PROFILE_PARTS = (
    ("health store", "proxy/health/"),
    ("credit gate", "billing/gate/"),
    ("admission", "gateway/admission.py"),
    ("settle", "gateway/settle.py"),
    ("redis client", "redis/"),
    ("upstream client", "proxy/transport.py"),
    ("uvicorn / ASGI server", "uvicorn/"),
)


def start_profile(row: Row, mode: str, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    """py-spy sampling the server for the throughput run (collapsed stacks), from the harness core."""
    out = Path(args.profile) / f"{row.name}-{mode}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    argv = ["taskset", "-c", CLIENT_CPU, py_spy, "record", "--nonblocking", "-r", "200", "-f", "raw"]
    argv += ["-d", str(args.duration), "-p", str(row.pid), "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def profile_summary(path: Path) -> str:
    """Inclusive share of samples per part (a stack counts once for each part it passes through)."""
    if not path.exists():
        return f"    profile: py-spy wrote nothing to {path}"
    total = 0
    seen = dict.fromkeys((name for name, _ in PROFILE_PARTS), 0)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        for name, marker in PROFILE_PARTS:
            if marker in stack:
                seen[name] += n
    if not total:
        return "    profile: no samples"
    parts = ", ".join(f"{name} {n / total:.0%}" for name, n in seen.items())
    return f"    profile ({total} samples, {path.name}): {parts}"


def redis_footprint(client: Any) -> tuple[int, int, int]:
    """(bytes held by the keys of this db, number of keys, usage events queued): MEMORY USAGE summed
    over the db's own keys, because INFO's used_memory is server-wide."""
    total = count = 0
    for key in client.scan_iter(count=1000):
        total += int(client.memory_usage(key, samples=0) or 0)
        count += 1
    # The usage stream(s), whatever the gate names them (one per shard on a cluster).
    queued = sum(int(client.xlen(key)) for key in client.scan_iter(count=1000, _type="STREAM"))
    return total, count, queued


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process and its reaped children, from /proc (Linux)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: utime, stime, cutime, cstime are fields 14-17 of the whole line.
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def core_ticks() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies of cores 0 and 1, from /proc/stat."""
    out: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name in ("cpu0", "cpu1"):
            ticks = [int(v) for v in values[:8]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            out[name] = (sum(ticks) - idle, sum(ticks))
    return out


def core_busy(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> tuple[float, float]:
    """Busy share of core 0 and core 1 between two `core_ticks()`: which side saturated in a row."""

    def share(core: str) -> float:
        busy, total = (a - b for a, b in zip(after[core], before[core], strict=True))
        return busy / total if total else 0.0

    return share("cpu0"), share("cpu1")


def redis_counters(url: str) -> tuple[int, int]:
    """(socket reads, script calls) a Redis server has processed: on a server only one gateway uses,
    the reads are its round trips (a pipeline arrives as one read) and EVALSHA/EVAL the Lua calls
    they carried (the commands a script runs inside count in INFO too, so those are left out)."""
    if not url:
        return 0, 0
    from common.redis import sync_redis

    client = sync_redis(url)
    reads = int(client.info("stats")["total_reads_processed"])
    commands = client.info("commandstats")
    scripts = sum(int(commands.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))
    return reads, scripts


def measure_settlement(row: Row) -> None:
    """What the gateway queued, settled by one worker loop on core 0 (idle once the rows are done):
    the worker's CPU per event, so capacity planning can add a settlement core to gateway cores."""
    cores_before = core_ticks()
    argv = ["taskset", "-c", SERVER_CPU, PY, str(HERE / "settle_drain.py")]
    done = subprocess.run(argv, env=row.env, cwd=REPO, capture_output=True, text=True, check=True)
    busy = core_busy(cores_before, core_ticks())
    result = json.loads(done.stdout.strip().splitlines()[-1])
    events, cpu_s, wall_s = int(result["events"]), float(result["cpu_s"]), float(result["wall_s"])
    if not events:
        return
    per_core = events / cpu_s if cpu_s else float("inf")
    row.settlement = {"events": events, "wall_s": wall_s, "worker_cpu_s": cpu_s, "events_per_worker_core_s": per_core}
    need = row.thr["nonstream"].rps / per_core
    print(
        f"settlement, one worker on core 0: {events:,} events in {wall_s:.1f} s ({events / wall_s:,.0f}/s), worker "
        f"CPU {1000 * cpu_s / events:.3f} ms/event = {per_core:,.0f} events/s per worker core; cores busy "
        f"0 {busy[0]:.0%}, 1 {busy[1]:.0%} (PostgreSQL and Redis run unpinned). One gateway core at "
        f"{row.thr['nonstream'].rps:,.0f} req/s keeps {need:.2f} of a settlement core busy."
    )


# --- report ----------------------------------------------------------------------------------------


def report(direct: Row, nginx: Row, gateway: Row, queued: int, baseline: Row | None = None) -> bool:
    def added(row: Row, mode: str, attr: str) -> float:
        return getattr(row.lat[mode], attr) - getattr(direct.lat[mode], attr)

    head = (
        f"{'':<18}{'req/s':>10}{'req/s':>10} |{'p50':>8}{'p99':>8}{'+p50':>8}{'+p99':>8} |"
        f"{'p50':>8}{'p99':>8}{'+p50':>8}{'+p99':>8} |{'TTFT':>8}{'+TTFT':>8}"
    )
    print()
    groups = ("1 connection, non-stream (ms)", "1 connection, stream-50 (ms)")
    print(f"{'':<18}{'64 connections':^20} |{groups[0]:^32} |{groups[1]:^32} |{'ms':^16}")
    print(f"{'':<18}{'non-str':>10}{'str-50':>10} |" + head.split("|", 1)[1])
    rows = (direct, nginx, gateway) if baseline is None else (direct, nginx, gateway, baseline)
    for row in rows:
        cells = [f"{row.name:<18}{row.thr['nonstream'].rps:>10,.0f}{row.thr['stream'].rps:>10,.0f} |"]
        for mode in ("nonstream", "stream"):
            lat = row.lat[mode]
            plus = "" if row is direct else f"{added(row, mode, 'p50_ms'):>8.2f}{added(row, mode, 'p99_ms'):>8.2f}"
            cells.append(f"{lat.p50_ms:>8.2f}{lat.p99_ms:>8.2f}{plus or '':>16} |")
        plus_ttft = "" if row is direct else f"{row.ttft_ms - direct.ttft_ms:>8.2f}"
        cells.append(f"{row.ttft_ms:>8.2f}{plus_ttft:>8}")
        print("".join(cells))
    failures = {r.name: sum(w.failures for w in (*r.thr.values(), *r.lat.values())) for r in rows}
    print(f"\nfailed responses (non-2xx, socket errors, malformed bodies): {failures}")
    for row in rows:
        if row.cpu_ms:
            cpu = ", ".join(f"{mode} {ms:.3f} ms" for mode, ms in row.cpu_ms.items())
            print(f"server CPU per request, {row.name}: {cpu}")
    if baseline is not None:
        print("\nthis checkout vs --compare baseline (same run, same harness):")
        for mode in ("nonstream", "stream"):
            rps = gateway.thr[mode].rps / baseline.thr[mode].rps
            cpu = gateway.cpu_ms[mode] / baseline.cpu_ms[mode] if baseline.cpu_ms.get(mode) else float("nan")
            print(f"  {mode:<9} req/s x{rps:.3f} (above 1 is faster)   CPU per request x{cpu:.3f} (below 1 is cheaper)")
    print(f"usage events the gateway queued for settlement during the run: {queued:,}")

    ns_ratio = gateway.thr["nonstream"].rps / nginx.thr["nonstream"].rps
    st_ratio = gateway.thr["stream"].rps / nginx.thr["stream"].rps
    checks = [
        (
            f"non-streaming req/s >= {TARGET_NONSTREAM_RATIO:.1%} of nginx",
            f"{ns_ratio:.2%}",
            ns_ratio >= TARGET_NONSTREAM_RATIO,
        ),
        (f"streaming req/s >= {TARGET_STREAM_RATIO:.1%} of nginx", f"{st_ratio:.2%}", st_ratio >= TARGET_STREAM_RATIO),
        (
            f"added p50 (non-streaming) <= {TARGET_ADDED_P50_MS} ms",
            f"{added(gateway, 'nonstream', 'p50_ms'):.2f} ms",
            added(gateway, "nonstream", "p50_ms") <= TARGET_ADDED_P50_MS,
        ),
        (
            f"added time to first token <= {TARGET_ADDED_TTFT_MS} ms",
            f"{gateway.ttft_ms - direct.ttft_ms:.2f} ms",
            gateway.ttft_ms - direct.ttft_ms <= TARGET_ADDED_TTFT_MS,
        ),
        (
            f"gateway CPU per non-streaming request <= {TARGET_CPU_MS} ms",
            f"{gateway.cpu_ms['nonstream']:.3f} ms",
            gateway.cpu_ms["nonstream"] <= TARGET_CPU_MS,
        ),
        ("no failed responses through the gateway", str(failures[gateway.name]), failures[gateway.name] == 0),
    ]
    print("\ntargets (gateway vs nginx in this run):")
    for label, value, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<48} {value}")
    return all(ok for _, _, ok in checks)


# --- main ------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per throughput run")
    parser.add_argument("--latency-duration", type=int, default=5, help="seconds per 1-connection latency run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--ttft-requests", type=int, default=300)
    parser.add_argument("--database", default="bench", help="database name, created fresh on DATABASE_URL's server")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10"))
    parser.add_argument("--compare", metavar="DIR", help="also measure the gateway of another checkout, as a baseline")
    parser.add_argument("--compare-redis-url", default="redis://127.0.0.1:6379/11", help="Redis db for the baseline")
    parser.add_argument(
        "--upstream",
        choices=("nginx", "python"),
        default="nginx",
        help="the upstream mock: nginx serving fixed bodies (default) or tests/mockprovider",
    )
    parser.add_argument(
        "--shared-redis",
        action="store_true",
        help="use --redis-url/--compare-redis-url instead of a private redis-server per gateway "
        "(a private server's counters give each gateway's Redis round trips per request)",
    )
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn", help="the gateway's ASGI server")
    parser.add_argument(
        "--compare-server",
        choices=("uvicorn", "granian"),
        help="the baseline's ASGI server (default: --server); with --compare . it compares servers",
    )
    parser.add_argument("--results", default=str(HERE / "results"), help="directory for the run's JSON results")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="sample each gateway's throughput runs with py-spy (collapsed stacks into DIR; costs the harness core)",
    )
    parser.add_argument("--seed", metavar="MOCK_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        _seed_main(args.seed)
        return 0

    missing = [tool for tool in ("wrk", "nginx", "taskset") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run scripts/system-deps.sh")
    if not args.shared_redis and shutil.which("redis-server") is None:
        sys.exit("missing redis-server (each gateway gets its own): install it, or pass --shared-redis")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs two cores: the server on core 0, the load generator on core 1")

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    procs = Procs()
    try:
        return run(args, tmp, procs)
    finally:
        procs.stop_all()
        print(f"logs: {tmp}")


def start_redis(procs: Procs, name: str, tmp: Path) -> str:
    """A private redis-server (no persistence) for one gateway: its INFO counters are that gateway's alone."""
    port = free_port()
    log = tmp / f"redis-{name}.log"
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = procs.start([*argv, "--dir", str(tmp)], log=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"redis-server exited:\n{log.read_text(errors='replace')[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    sys.exit(f"redis-server did not start:\n{log.read_text(errors='replace')[-2000:]}")


def server_argv(server: str, port: int) -> list[str]:
    if server == "granian":
        return [
            *(PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)),
            *("--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning"),
            "openrouter_site.asgi:application",
        ]
    return [
        *(PY, "-m", "uvicorn", "openrouter_site.asgi:application"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "on"),
        *("--log-level", "warning"),
    ]


def start_gateway(
    procs: Procs,
    repo: Path,
    name: str,
    database: str,
    redis_url: str,
    mock_url: str,
    tmp: Path,
    *,
    stream_base: str = "",
    server: str = "uvicorn",
) -> Row:
    """One server worker of `repo`'s code on core 0, on a fresh database and a flushed Redis db."""
    from common.redis import sync_redis

    server = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    db_url = database_url(server, database)
    print(f"{name}: {repo}, database {database} (fresh, migrating), redis {redis_url} (flushed)")
    prepare_database(db_url, tmp / f"migrate-{name}.log", repo)
    sync_redis(redis_url).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "openrouter_site.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "BENCH_MOCK_BASE_URL": f"{mock_url}/v1",
        "BENCH_MOCK_API_KEY": "sk-bench-upstream",
        "BENCH_MOCK_SSE_API_KEY": "sk-bench-upstream",
        "BENCH_STREAM_BASE_URL": stream_base,
    }
    key = seed(env, mock_url, repo)
    port = free_port()
    log = tmp / f"{name}.log"
    proc = procs.start(["taskset", "-c", SERVER_CPU, *server_argv(server, port)], log=log, env=env, cwd=repo)
    wait_http(port, "/api/v1/chat/completions", proc, log)
    path = "/api/v1/chat/completions"
    row = Row(name, port, path, f"Bearer {key}", GATEWAY_MODELS, tally=True, pid=proc.pid, redis_url=redis_url)
    row.env = env
    return row


def nginx_mock_bodies(mock_url: str, into: Path) -> None:
    """The Python mock's own answers (whole, and the 50-chunk stream) as files the nginx mock serves."""
    port = int(urlsplit(mock_url).port or 80)
    for mode, name in (("nonstream", "nonstream.json"), ("stream", "stream.sse")):
        body = {"model": UPSTREAM[mode], "messages": MESSAGES, "stream": mode == "stream"}
        status, data = post(port, "/v1/chat/completions", body, "Bearer sk-bench-upstream")
        if status != 200:
            sys.exit(f"the Python mock's {mode} answer failed: {status} {data[:300]!r}")
        into.mkdir(exist_ok=True)
        (into / name).write_bytes(data)
    # nginx workers run as an unprivileged user when the benchmark runs as root.
    for path in (into.parent, into, *into.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)


def start_nginx(procs: Procs, template: str, name: str, tmp: Path, *, cpu: str, **values: object) -> None:
    conf_path = tmp / f"{name}.conf"
    conf_path.write_text(string.Template((HERE / template).read_text()).substitute(prefix=tmp, **values))
    log = tmp / f"{name}.out"
    error_log = str(tmp / f"{name}-error.log")
    argv = ["taskset", "-c", cpu, "nginx", "-p", str(tmp), "-e", error_log, "-c", str(conf_path)]
    proc = procs.start(argv, log=log)
    wait_http(int(str(values["listen_port"])), "/_health", proc, log)


def start_upstream(procs: Procs, tmp: Path, upstream: str = "nginx") -> tuple[int, str, str]:
    """The upstream mock on the harness core: (port, base URL, streaming path). The Python mock
    always starts (it supplies the answers); with `upstream="nginx"` an nginx worker serves them."""
    py_mock_port = free_port()
    py_mock_url = f"http://127.0.0.1:{py_mock_port}"
    mock_log = tmp / "mock.log"
    # The Python mock runs on the harness core (core 1) with wrk, never on the measured one.
    argv = ["taskset", "-c", CLIENT_CPU, PY, "-m", "tests.mockprovider", "--port", str(py_mock_port), "--no-record"]
    mock = procs.start(argv, log=mock_log)
    wait_http(py_mock_port, "/_health", mock, mock_log)
    if upstream != "nginx":
        return py_mock_port, py_mock_url, "/v1/chat/completions"
    nginx_mock_bodies(py_mock_url, tmp / "bodies")
    mock_port = free_port()
    start_nginx(
        procs, "nginx-mock.conf.tmpl", "mock-nginx", tmp, cpu=CLIENT_CPU, listen_port=mock_port, bodies=tmp / "bodies"
    )
    return mock_port, f"http://127.0.0.1:{mock_port}", "/sse/v1/chat/completions"


def run(args: argparse.Namespace, tmp: Path, procs: Procs) -> int:
    sys.path.insert(0, str(REPO))
    # The project's one Redis seam reads its settings (whether Redis is a cluster) on first use.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
    from common.redis import sync_redis

    nginx_port = free_port()
    load = os.getloadavg()[0]
    if load > 0.5:
        # Two cores, each with one job: anything else running skews every row (the ratios less so).
        print(f"WARNING: 1-minute load average is {load:.2f}; other processes will distort these numbers")
    mock_port, mock_url, stream_path = start_upstream(procs, tmp, args.upstream)
    print(f"upstream mock ({args.upstream}) on :{mock_port}, nginx proxy on :{nginx_port}, server {args.server}")
    start_nginx(procs, "nginx.conf.tmpl", "nginx", tmp, cpu=SERVER_CPU, mock_port=mock_port, listen_port=nginx_port)

    stream_base = mock_url + stream_path.removesuffix("/chat/completions")
    redis_url = args.redis_url if args.shared_redis else start_redis(procs, "gateway", tmp)
    via_gateway = start_gateway(
        procs, REPO, "gateway", args.database, redis_url, mock_url, tmp, stream_base=stream_base, server=args.server
    )
    baseline = None
    if args.compare:
        other = Path(args.compare).resolve()
        base_db = f"{args.database}_base"
        base_redis = args.compare_redis_url if args.shared_redis else start_redis(procs, "baseline", tmp)
        baseline = start_gateway(
            procs,
            other,
            "baseline",
            base_db,
            base_redis,
            mock_url,
            tmp,
            stream_base=stream_base,
            server=args.compare_server or args.server,
        )
    if args.shared_redis:  # a shared server's counters are everyone's: no per-request Redis figures
        for row in (via_gateway, baseline):
            if row is not None:
                row.redis_url = ""
    upstream_paths = {"nonstream": "/v1/chat/completions", "stream": stream_path}
    direct = Row("direct mock", mock_port, "/v1/chat/completions", "Bearer sk-bench-upstream", UPSTREAM)
    via_nginx = Row("nginx", nginx_port, "/v1/chat/completions", "Bearer sk-bench-upstream", UPSTREAM)
    direct.paths = via_nginx.paths = upstream_paths
    rows = [direct, via_nginx, via_gateway] + ([baseline] if baseline else [])
    for row in rows:
        for mode in ("nonstream", "stream"):
            for _ in range(50):  # warm caches (key, catalog, connection pools) and check the answers
                status, data = post(row.port, row.path_for(mode), row.body(mode), row.auth)
                if status != 200 or (mode == "stream" and b"[DONE]" not in data):
                    sys.exit(f"{row.name} {mode}: {status} {data[:500]!r}\nlogs: {tmp}")

    print(f"measuring: {args.duration}s per throughput run, {args.latency_duration}s per latency run")
    redis_before = redis_footprint(sync_redis(redis_url))
    for row in rows:
        measure(row, args, tmp)
    redis_after = redis_footprint(sync_redis(redis_url))
    queued = redis_after[2]
    ok = report(direct, via_nginx, via_gateway, queued, baseline)
    for row in rows:
        if row.redis:
            trips = ", ".join(f"{mode} {r:.2f} reads / {c:.2f} scripts" for mode, (r, c) in row.redis.items())
            print(f"Redis per request, {row.name} (its own server: reads are round trips): {trips}")
    served = queued - redis_before[2]
    if served > 0:
        grown, keys = redis_after[0] - redis_before[0], redis_after[1] - redis_before[1]
        print(
            f"gateway Redis db: {grown / served:,.0f} bytes and {keys / served:.3f} keys per request while the "
            f"{served:,} usage events wait for settlement (no worker runs here; settled, a request leaves "
            "about 32 bytes: tests/e2e/test_live_faults.py)"
        )
    if served > 0:
        measure_settlement(via_gateway)
    end_load = os.getloadavg()[0]
    print(f"load average at the end: {end_load:.2f}")
    write_results(args, rows, ok, (load, end_load))
    return 0 if ok else 1


def write_results(args: argparse.Namespace, rows: list[Row], ok: bool, load: tuple[float, float]) -> None:
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    data = {
        "when": stamp,
        "upstream": args.upstream,
        "server": args.server,
        "baseline_server": (args.compare_server or args.server) if args.compare else None,
        "connections": args.connections,
        "duration_s": args.duration,
        "load_average": {"start": load[0], "end": load[1]},
        "targets_passed": ok,
        "rows": [
            {
                "name": row.name,
                "modes": {
                    mode: {
                        "rps": row.thr[mode].rps,
                        "p50_ms_1conn": row.lat[mode].p50_ms,
                        "p99_ms_1conn": row.lat[mode].p99_ms,
                        "p99_ms_64conn": row.thr[mode].p99_ms,
                        "failures": row.thr[mode].failures + row.lat[mode].failures,
                        "server_cpu_ms_per_request": row.cpu_ms.get(mode),
                        "core_busy": {"core0": row.cores[mode][0], "core1": row.cores[mode][1]},
                        "redis_reads_per_request": row.redis[mode][0] if mode in row.redis else None,
                        "redis_scripts_per_request": row.redis[mode][1] if mode in row.redis else None,
                    }
                    for mode in ("nonstream", "stream")
                },
                "ttft_ms": row.ttft_ms,
                "settlement": row.settlement or None,
            }
            for row in rows
        ],
    }
    path = out / f"gateway-{stamp}-{args.upstream}-{args.server}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    sys.exit(main())
