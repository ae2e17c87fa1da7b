"""Activity at scale: load N generations across 50 organizations, roll them up, time the 30-day chart of
the largest organization and measure the CSV export's peak memory.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/h_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python benchmarks/activity.py [--rows 10000000] [--orgs 50] [--reuse]

Migrates the database it is given and appends generations to it: point it at a scratch database.
`--reuse` skips the load when the organizations are already there (re-measure after a change).
Rows are written with COPY in text format, built in Python in blocks; organization sizes follow a
Zipf-like curve (organization 0 is the largest, about a fifth of all rows), spread over 35 days. Each
organization has 4 keys (each used by one app) and favours 6 of the 32 models, each served by 2 of 6
providers, as real traffic does; fully independent dimensions would make rollups as large as the raw rows.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

import django

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.models import User  # noqa: E402
from analytics.models import UsageRollup  # noqa: E402
from analytics.rollup import rollup_run  # noqa: E402
from billing.models import Generation  # noqa: E402
from organizations.models import Organization  # noqa: E402
from organizations.services import api_key_create, organization_create  # noqa: E402

PREFIX = "bench-analytics"
DAYS = 35
MODELS = [f"vendor{v}/model-{m}" for v in range(8) for m in range(4)]
PROVIDERS = ["deepinfra", "together", "fireworks", "openai", "anthropic", "google"]
APPS = [("", ""), ("Cool Chat", ""), ("Agent", ""), ("", "https://docs.example.org/a"), ("", "https://x.example/")]
MODEL_WEIGHTS = [1 / (rank + 1) for rank in range(6)]  # an organization's favourite models
COLUMNS = (
    "generation_id, organization_id, api_key_id, user_id, model, provider_slug, provider_name, endpoint_tag,"
    " upstream_id, api_type, router, tokens_prompt, tokens_completion, tokens_reasoning, tokens_cached,"
    " tokens_cache_write, usage_estimated, cost_nanos, list_cost_nanos, is_byok, latency_ms, ttft_ms,"
    " generation_time_ms, finish_reason, native_finish_reason, streamed, cancelled, http_referer, app_title,"
    " external_user, provider_responses, created_at"
)


def setup_orgs(count: int) -> list[tuple[int, list[tuple[int, int]]]]:
    """(organization id, [(key id, user id)]) for each benchmark organization, created if missing."""
    out = []
    for i in range(count):
        user, _ = User.objects.get_or_create(email=f"{PREFIX}-{i}@example.com")
        org = Organization.objects.filter(name=f"{PREFIX} {i}").first() or organization_create(
            name=f"{PREFIX} {i}", owner=user
        )
        keys = list(org.api_keys.values_list("id", "created_by_id"))
        for k in range(len(keys), 4):
            keys.append((api_key_create(organization=org, name=f"key {k}", created_by=user).api_key.pk, user.pk))
        out.append((org.pk, keys))
    return out


def org_weights(count: int) -> list[float]:
    raw = [1 / (i + 1) for i in range(count)]
    return [w / sum(raw) for w in raw]


def load(rows: int, orgs: list[tuple[int, list[tuple[int, int]]]], now: datetime) -> float:
    rng = random.Random(7)
    weights = org_weights(len(orgs))
    start = now - timedelta(days=DAYS)
    span = int(timedelta(days=DAYS).total_seconds())
    run = f"{int(now.timestamp())}"
    began = time.perf_counter()
    block = 50_000
    # Django's cursor hands .copy() through to psycopg 3's; autocommit commits the COPY as one statement.
    with connection.cursor() as cursor, cursor.copy(f"COPY billing_generation ({COLUMNS}) FROM STDIN") as copy:
        for base in range(0, rows, block):
            buf = io.StringIO()
            picks = rng.choices(range(len(orgs)), weights=weights, k=min(block, rows - base))
            ranks = rng.choices(range(len(MODEL_WEIGHTS)), weights=MODEL_WEIGHTS, k=len(picks))
            for n, o, rank in zip(range(base, base + len(picks)), picks, ranks, strict=True):
                org_id, keys = orgs[o]
                key = n % len(keys)
                key_id, user_id = keys[key]
                m = (o * 5 + rank) % len(MODELS)
                model = MODELS[m]
                provider = PROVIDERS[(m + n % 2) % len(PROVIDERS)]
                title, referer = APPS[(o + key) % len(APPS)]
                prompt, completion = rng.randint(10, 4000), rng.randint(1, 800)
                byok = "t" if n % 11 == 0 else "f"
                created = start + timedelta(seconds=rng.randrange(span))
                buf.write(
                    f"{PREFIX}-{run}-{n}\t{org_id}\t{key_id}\t{user_id}\t{model}\t{provider}\t{provider.title()}\t"
                    f"{provider}\t\tcompletions\t\t{prompt}\t{completion}\t{completion // 10}\t0\t0\tf\t"
                    f"{prompt * 300 + completion * 1200}\t{prompt * 300 + completion * 1200}\t{byok}\t"
                    f"{rng.randint(80, 9000)}\t{rng.randint(40, 900)}\t{rng.randint(40, 8000)}\tstop\tstop\tt\tf\t"
                    f"{referer}\t{title}\t\t[]\t{created.isoformat()}\n"
                )
            copy.write(buf.getvalue())
            print(f"  loaded {base + len(picks):,} rows", end="\r", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_generation")
    print()
    return time.perf_counter() - began


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - t) * 1000)
    return out


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


def get_all(client: Client, url: str, params: dict[str, str]) -> int:
    """GET and read the whole body (a streamed one through its async iterator, as ASGI does); its size."""
    response = client.get(url, params)
    if not getattr(response, "streaming", False):
        return len(response.content)

    async def drain() -> int:
        return sum([len(chunk) async for chunk in response.streaming_content])  # type: ignore[attr-defined]

    return async_to_sync(drain)()


def export_peak(client: Client, url: str, range_key: str) -> tuple[int, int, float]:
    """(rows, peak traced bytes, seconds) for one streamed export, consumed chunk by chunk like ASGI does."""
    tracemalloc.start()
    began = time.perf_counter()
    response = client.get(url, {"range": range_key})

    async def drain() -> int:
        lines = 0
        async for chunk in response.streaming_content:  # type: ignore[attr-defined]
            lines += chunk.count(b"\n")
        return lines

    lines = async_to_sync(drain)()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return lines - 1, peak, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=40, help="timed requests per measurement")
    parser.add_argument("--reuse", action="store_true", help="skip the load if the organizations exist")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    now = datetime.now(UTC)
    existing = Organization.objects.filter(name__startswith=PREFIX).exists()
    orgs = setup_orgs(args.orgs)
    if not (args.reuse and existing):
        seconds = load(args.rows, orgs, now)
        print(f"load: {args.rows:,} rows in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s, COPY)")
    largest = Organization.objects.get(pk=orgs[0][0])

    began = time.perf_counter()
    result = rollup_run()
    print(
        f"rollup: {time.perf_counter() - began:.1f} s ({result.hours_rebuilt} hours, {result.days_rebuilt} days;"
        f" rollup rows: {UsageRollup.objects.count():,})"
    )
    began = time.perf_counter()
    rollup_run()
    print(f"rollup re-run (nothing new): {(time.perf_counter() - began) * 1000:.0f} ms")

    client = Client()
    client.force_login(User.objects.get(email=f"{PREFIX}-0@example.com"))
    mine = Generation.objects.filter(organization=largest)
    in_window = mine.filter(created_at__gte=now - timedelta(days=30)).count()
    print(f"largest organization: {mine.count():,} generations, {in_window:,} in the last 30 days")
    base = f"/o/{largest.slug}/activity"
    for label, url, params in (
        ("chart JSON 30d by model (requests)", f"{base}/series.json", {"range": "30d"}),
        ("chart JSON 30d by app (cost)", f"{base}/series.json", {"range": "30d", "metric": "cost", "group": "app"}),
        ("chart JSON 24h by key (tokens)", f"{base}/series.json", {"range": "1d", "metric": "tokens", "group": "key"}),
        ("activity page 30d (totals, table, filters)", f"{base}/", {"range": "30d"}),
        ("activity page 30d filtered by model", f"{base}/", {"range": "30d", "model": MODELS[0]}),
        ("activity page 1h (5-minute buckets, raw rows)", f"{base}/", {"range": "1h"}),
        ("chart JSON 1h by model (raw rows)", f"{base}/series.json", {"range": "1h"}),
        ("generation list 30d, first page (keyset)", f"{base}/generations/", {"range": "30d"}),
        ("aggregate CSV 30d by model", f"{base}/aggregates.csv", {"range": "30d"}),
    ):
        assert client.get(url, params).status_code == 200
        samples = timed(lambda url=url, params=params: get_all(client, url, params), args.repeat)
        print(f"{label}: p50 {statistics.median(samples):.0f} ms, p95 {p95(samples):.0f} ms ({args.repeat} requests)")

    for range_key in ("1d", "7d", "30d"):
        rows, peak, seconds = export_peak(client, f"{base}/generations.csv", range_key)
        print(f"CSV export {range_key}: {rows:,} rows in {seconds:.1f} s, peak traced memory {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
