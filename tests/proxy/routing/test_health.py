"""The health store against the real Redis (REDIS_URL, the test run's own db) and in memory.

Each test drives a fake clock and runs inside one event loop (asyncio.run), since a redis.asyncio
connection belongs to the loop that opened it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from django.conf import settings

from common.redis import hot_connection, sync_redis
from proxy.health import (
    HealthConfig,
    HealthStore,
    MemoryHealthStore,
    RedisHealthStore,
    endpoint_stats,
    get_health_store,
    percentile,
    throughput,
)

T0 = 1_800_000_000.0  # a slot boundary (multiple of 10 s) and a minute boundary
CONFIG = HealthConfig(
    cb_failures=3,
    cb_error_rate=0.5,
    cb_min_requests=6,
    cb_window_s=60,
    cb_cooldown_s=10,
    cb_probe_ttl_s=5,
    outage_min_errors=2,
    p50_refresh_ms=0,
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


StoreFactory = Callable[[], HealthStore]


def _redis_url() -> str:
    assert settings.REDIS_URL, "the health tests run against the real Redis: set REDIS_URL"
    return str(settings.REDIS_URL)


def run(kind: str, body: Callable[[StoreFactory, Clock], Awaitable[None]], config: HealthConfig = CONFIG) -> None:
    """Run `body` with a factory of stores sharing one clock (and, for Redis, one database)."""
    clock = Clock()
    made: list[HealthStore] = []
    memory = MemoryHealthStore(config, clock)

    def factory() -> HealthStore:
        store: HealthStore = RedisHealthStore(_redis_url(), config, clock) if kind == "redis" else memory
        made.append(store)
        return store

    async def main() -> None:
        try:
            await body(factory, clock)
        finally:
            for store in made:
                await store.close()

    asyncio.run(main())


KINDS = pytest.mark.parametrize("kind", ["redis", "memory"])


_TENANTS = itertools.cycle((1, 2))


async def fail(store: HealthStore, endpoint_id: int, times: int = 1, orgs: tuple[int, ...] = ()) -> None:
    """Failures from the given organizations, else alternately from two (a breaker ignores what only
    one tenant sees)."""
    for n in range(times):
        await store.record(endpoint_id, ok=False, org_id=orgs[n % len(orgs)] if orgs else next(_TENANTS))


async def succeed(store: HealthStore, endpoint_id: int, times: int = 1) -> None:
    for _ in range(times):
        await store.record(endpoint_id, ok=True, latency_ms=100, ttft_ms=50, tokens=10, duration_ms=150)


@KINDS
def test_it_reports_nothing_for_endpoints_without_history(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        view = await make().view([1, 2])
        assert dict(view.by_endpoint) == {}
        assert view.get(1).circuit_open is False

    run(kind, body)


@KINDS
def test_it_opens_the_circuit_after_consecutive_failures(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7, times=2)
        assert (await store.view([7])).get(7).circuit_open is False
        await fail(store, 7)
        health = (await store.view([7])).get(7)
        assert health.circuit_open is True
        assert health.half_open_probe is False
        assert health.retry_after_s == pytest.approx(10.0)

    run(kind, body)


@KINDS
def test_it_resets_the_consecutive_count_on_success(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        for _ in range(2):
            await fail(store, 7, times=2)
            await succeed(store, 7)
        assert (await store.view([7])).get(7).circuit_open is False

    run(kind, body)


@KINDS
def test_it_opens_the_circuit_on_the_error_rate_over_the_window(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        for _ in range(2):  # alternate, so never 3 in a row
            await succeed(store, 7)
            await fail(store, 7)
            clock.advance(5)
        assert (await store.view([7])).get(7).circuit_open is False  # 50%, but only 4 requests
        await succeed(store, 7)
        await fail(store, 7)
        # 6 requests, 3 errors: 50% >= the threshold with the minimum volume
        assert (await store.view([7])).get(7).circuit_open is True

    run(kind, body)


@KINDS
def test_it_forgets_errors_older_than_the_window(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await succeed(store, 7, times=3)
        await fail(store, 7, times=2)
        clock.advance(75)
        await succeed(store, 7)
        await fail(store, 7, times=2)  # 2 of the last 3 in the window, below the minimum volume
        assert (await store.view([7])).get(7).circuit_open is False

    run(kind, body)


@KINDS
def test_it_never_opens_the_circuit_on_rate_limits(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        for _ in range(10):
            await store.record(7, ok=False, rate_limited=True)
        health = (await store.view([7])).get(7)
        assert health.circuit_open is False
        assert health.recent_outage is True  # but a throttled provider goes to the back of the line
        assert store.stats([7])[7]["uptime_last_5m"] is None  # and 429s are not downtime

    run(kind, body)


@KINDS
def test_it_flags_a_recent_outage_for_thirty_seconds(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7)
        assert (await store.view([7])).get(7).recent_outage is False  # one stray error is not an outage
        await fail(store, 7)
        clock.advance(15)
        assert (await store.view([7])).get(7).recent_outage is True
        await succeed(store, 7, times=3)
        assert (await store.view([7])).get(7).recent_outage is False  # more successes than failures
        clock.advance(31)
        await fail(store, 7)
        assert (await store.view([7])).get(7).recent_outage is False

    run(kind, body)


@KINDS
def test_it_grants_one_half_open_probe_after_the_cool_down_and_closes_on_its_success(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        gateway_a, gateway_b = make(), make()
        await fail(gateway_a, 7, times=3)
        clock.advance(9)
        assert (await gateway_b.view([7])).get(7).circuit_open is True
        clock.advance(2)
        first = (await gateway_a.view([7])).get(7)
        second = (await gateway_b.view([7])).get(7)
        assert (first.half_open_probe, first.circuit_open) == (True, False)
        assert (second.half_open_probe, second.circuit_open) == (False, True)  # one probe at a time
        await succeed(gateway_a, 7)
        for store in (gateway_a, gateway_b):
            health = (await store.view([7])).get(7)
            assert (health.circuit_open, health.half_open_probe) == (False, False)
        await fail(gateway_b, 7, times=2)  # a fresh start: old errors do not trip it again
        assert (await gateway_b.view([7])).get(7).circuit_open is False

    run(kind, body)


@KINDS
def test_it_reopens_the_circuit_when_the_probe_fails(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7, times=3)
        clock.advance(10)
        assert (await store.view([7])).get(7).half_open_probe is True
        await fail(store, 7)
        health = (await store.view([7])).get(7)
        assert health.circuit_open is True
        assert health.retry_after_s == pytest.approx(10.0)

    run(kind, body)


@KINDS
def test_it_ignores_stragglers_failing_during_the_cool_down(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7, times=3)
        clock.advance(6)
        await fail(store, 7)  # a request sent before the circuit opened
        clock.advance(4)
        assert (await store.view([7])).get(7).half_open_probe is True  # the cool-down was not extended

    run(kind, body)


@KINDS
def test_it_hands_the_probe_to_someone_else_when_the_holder_never_reports(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7, times=3)
        clock.advance(10)
        assert (await store.view([7])).get(7).half_open_probe is True
        clock.advance(4)
        assert (await store.view([7])).get(7).circuit_open is True
        clock.advance(2)
        assert (await store.view([7])).get(7).half_open_probe is True

    run(kind, body)


@KINDS
def test_it_tracks_latency_ttft_and_throughput_medians(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        for latency, ttft, tokens in ((100, 40, 60), (300, 60, 90), (200, 50, 300)):
            await store.record(7, ok=True, latency_ms=latency, ttft_ms=ttft, tokens=tokens, duration_ms=1_050)
        health = (await store.view([7])).get(7)
        assert health.latency_p50_ms == pytest.approx(200)
        assert health.ttft_p50_ms == pytest.approx(50)
        # tokens over the generation time after the first token: 90 / (1.05 s - 0.06 s)
        assert health.throughput_p50 == pytest.approx(90 / 0.99, rel=1e-3)

    run(kind, body)


@KINDS
def test_it_computes_uptime_over_five_minutes_thirty_minutes_and_a_day(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7, times=1)
        await succeed(store, 7, times=1)
        clock.advance(20 * 60)  # out of the 5-minute window, inside the 30-minute one
        await succeed(store, 7, times=2)
        clock.advance(3 * 3600)  # out of 30 minutes, inside the day
        await succeed(store, 7, times=4)
        await store.record(7, ok=False, rate_limited=True)
        stats = store.stats([7, 8])
        assert stats[7]["uptime_last_5m"] == 100.0
        assert stats[7]["uptime_last_30m"] == 100.0
        assert stats[7]["uptime_last_1d"] == pytest.approx(87.5)  # 7 of 8, the 429 excluded
        assert stats[7]["latency_last_30m"] == {"p50": 50.0, "p75": 50.0, "p90": 50.0, "p99": 50.0}
        assert stats[7]["throughput_last_30m"]["p50"] == pytest.approx(100.0)
        assert stats[8] == {
            "uptime_last_5m": None,
            "uptime_last_30m": None,
            "uptime_last_1d": None,
            "latency_last_30m": None,
            "throughput_last_30m": None,
            "tool_call_error_rate_last_30m": None,
        }
        clock.advance(86_400)
        await succeed(store, 7)
        assert store.stats([7])[7]["uptime_last_1d"] == 100.0  # yesterday is gone

    run(kind, body)


@KINDS
def test_it_measures_the_share_of_bad_tool_calls_over_thirty_minutes(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        for verdict in (True, False, True, False):
            await store.record(7, ok=True, latency_ms=100, tool_calls_ok=verdict)
        await succeed(store, 7, times=3)  # answers without tool calls do not count
        assert (await store.view([7])).get(7).tool_error_rate is None  # 4 < the minimum of 5
        clock.advance(10 * 60)
        await store.record(7, ok=True, latency_ms=100, tool_calls_ok=False)
        assert (await store.view([7])).get(7).tool_error_rate == pytest.approx(0.6)
        assert store.stats([7])[7]["tool_call_error_rate_last_30m"] == pytest.approx(0.6)
        await store.record(8, ok=False, org_id=1, tool_calls_ok=False)  # failures carry no verdict
        assert (await store.view([8])).get(8).tool_error_rate is None
        clock.advance(25 * 60)  # the first four are older than 30 minutes; one of five remains
        for _ in range(4):
            await store.record(7, ok=True, latency_ms=100, tool_calls_ok=True)
        assert (await store.view([7])).get(7).tool_error_rate == pytest.approx(0.2)
        clock.advance(31 * 60)
        assert (await store.view([7])).get(7).tool_error_rate is None

    run(kind, body)


def test_it_shares_state_between_two_gateway_processes_through_redis() -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        process_a, process_b = make(), make()
        await fail(process_a, 42, times=1)
        await fail(process_b, 42, times=2)
        assert (await process_a.view([42])).get(42).circuit_open is True
        assert (await process_b.view([42])).get(42).circuit_open is True
        await succeed(process_b, 43, times=1)
        await process_b.flush()  # a success is written within HealthConfig.flush_ms, not at once
        assert process_a.stats([43])[43]["uptime_last_5m"] == 100.0

    run("redis", body)


class _RoundTrips:
    """Counts what a store sends to Redis on the gateway's pipelined connection: each batch is one
    write (one round trip), named by the commands in it."""

    def __init__(self, store: RedisHealthStore) -> None:
        hot = hot_connection(store.url)
        assert hot is not None
        self.commands: list[str] = []
        execute, execute_many = hot.execute, hot.execute_many

        async def counting(*args: Any) -> Any:
            self.commands.append(str(args[0]))
            return await execute(*args)

        async def counting_many(commands: Any) -> Any:
            self.commands.append("batch:" + ",".join(sorted({str(c[0]) for c in commands})))
            return await execute_many(commands)

        hot.execute = counting  # type: ignore[method-assign]
        hot.execute_many = counting_many  # type: ignore[method-assign]


def test_it_keeps_the_request_path_off_redis() -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        assert isinstance(store, RedisHealthStore)
        for eid in range(1, 6):
            await fail(store, eid, times=eid)
        await store.view([1])  # binds the client (and loads the scripts)
        trips = _RoundTrips(store)
        # Endpoints never seen: one pipelined read for all of them.
        view = await store.view(range(1, 11))
        assert trips.commands == ["batch:EVALSHA"]
        assert [eid for eid in range(1, 6) if view.get(eid).circuit_open] == [3, 4, 5]
        # Once the snapshot is fresh, a view is served in process and a success is only buffered.
        await store.flush()
        trips.commands.clear()
        view = await store.view(range(1, 11))
        assert [eid for eid in range(1, 6) if view.get(eid).circuit_open] == [3, 4, 5]
        await store.record(9, ok=True, latency_ms=1)
        assert trips.commands == []
        # The background flush writes it within flush_ms, in one batch.
        for _ in range(100):
            if trips.commands:
                break
            await asyncio.sleep(0.005)
        assert trips.commands == ["batch:EVALSHA"]
        assert store.stats([9])[9]["uptime_last_5m"] == 100.0
        # A failure is written at once and read back: this process's next view already has it.
        trips.commands.clear()
        await fail(store, 2)
        assert trips.commands == ["batch:EVALSHA"]
        assert (await store.view([2])).get(2).circuit_open is True
        assert trips.commands == ["batch:EVALSHA"]

    run("redis", body)


def test_a_breaker_opened_by_another_process_is_seen_after_one_refresh() -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        here, other = make(), make()
        assert not (await here.view([77])).get(77).circuit_open
        await here.flush()
        await fail(other, 77, times=CONFIG.cb_failures)
        assert (await other.view([77])).get(77).circuit_open
        assert not (await here.view([77])).get(77).circuit_open  # the snapshot has not been re-read yet
        await here.flush()  # what the background refresh does every snapshot_ms
        health = (await here.view([77])).get(77)
        assert health.circuit_open and health.retry_after_s == pytest.approx(CONFIG.cb_cooldown_s)
        # After the cool-down exactly one process gets the probe, though both saw the circuit open.
        clock.advance(CONFIG.cb_cooldown_s)
        probes = [(await store.view([77])).get(77).half_open_probe for store in (here, other, here)]
        assert probes == [True, False, False]

    run("redis", body)


def test_a_batch_reloads_its_scripts_after_a_redis_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scripts go as bare EVALSHA in a batch; a NOSCRIPT (a restarted Redis lost them) reloads them."""
    import uuid

    from proxy.health import redis_store

    # Sources no Redis has seen (a nonce in a comment), as after a restart.
    nonce = f"\n-- {uuid.uuid4()}\n"
    monkeypatch.setattr(redis_store, "_VIEW_LUA", redis_store._VIEW_LUA + nonce)
    monkeypatch.setattr(redis_store, "_RECORD_LUA", redis_store._RECORD_LUA + nonce)

    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        assert isinstance(store, RedisHealthStore)
        await fail(store, 55, times=CONFIG.cb_failures)
        assert (await store.view([55])).get(55).circuit_open

    run("redis", body)


def test_only_the_calls_that_met_noscript_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose records ran but whose view met NOSCRIPT: rerunning the whole batch would count
    the records twice (record.lua is not idempotent)."""
    import uuid

    from proxy.health import redis_store
    from proxy.health.keys import endpoint

    monkeypatch.setattr(redis_store, "_VIEW_LUA", redis_store._VIEW_LUA + f"\n-- {uuid.uuid4()}\n")
    sync_redis(settings.REDIS_URL).script_load(redis_store._RECORD_LUA)

    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        assert isinstance(store, RedisHealthStore)
        await store.record(5601, ok=True, latency_ms=1)
        await store.record(5601, ok=True, latency_ms=1)
        assert len(store._pending) == 2  # buffered: the view below writes them in its batch
        trips = _RoundTrips(store)
        await store.view([5601])
        assert trips.commands == ["batch:EVALSHA", "SCRIPT", "batch:EVALSHA"]
        counts = sync_redis(settings.REDIS_URL).hgetall(f"{endpoint(5601)}:mok")
        assert sum(int(n) for n in counts.values()) == 2

    run("redis", body)


def test_close_writes_buffered_records() -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await store.view([88])
        await succeed(store, 88, times=3)
        await store.close()
        assert make().stats([88])[88]["uptime_last_5m"] == 100.0

    run("redis", body)


def test_close_waits_for_a_batch_the_flush_task_already_took() -> None:
    """Shutdown right after the last answer: the flush task has drained the buffer and its write is on
    the wire. close() lets that write finish instead of cancelling it (CI lost a stream's success so)."""

    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        assert isinstance(store, RedisHealthStore)
        await succeed(store, 89)
        for _ in range(1_000):  # a few loop turns: the flush task drains the buffer, then awaits Redis
            if not store._pending:
                break
            await asyncio.sleep(0)
        assert not store._pending and store._inflight
        await store.close()
        assert make().stats([89])[89]["uptime_last_5m"] == 100.0

    run("redis", body, dataclasses.replace(CONFIG, flush_ms=0))


def test_it_uses_redis_when_configured_and_serves_endpoint_stats_from_it() -> None:
    import proxy.health as health_module

    health_module._store = None
    try:
        store = get_health_store()
        assert isinstance(store, RedisHealthStore)
        assert get_health_store() is store

        async def body() -> None:
            await store.record(5, ok=True, ttft_ms=80, latency_ms=120, tokens=40, duration_ms=480)
            await store.close()

        asyncio.run(body())
        stats = endpoint_stats([5])[5]
        assert stats["uptime_last_30m"] == 100.0
        assert stats["latency_last_30m"]["p50"] == 80.0
        assert stats["throughput_last_30m"]["p50"] == 100.0
    finally:
        health_module._store = None


def test_it_computes_throughput_and_nearest_rank_percentiles() -> None:
    assert throughput(100, 2_000, 1_000) == 100.0
    assert throughput(100, 2_000, None) == 50.0
    assert throughput(0, 2_000, 10) is None
    assert throughput(10, None, None) is None
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile([5, 1, 3, 2, 4], 99) == 5
    assert percentile([], 50) is None


@KINDS
def test_it_refreshes_the_medians_at_most_once_a_second(kind: str) -> None:
    throttled = HealthConfig(p50_refresh_ms=1_000)

    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await store.record(7, ok=True, latency_ms=100)
        await store.record(7, ok=True, latency_ms=900)
        await store.record(7, ok=True, latency_ms=800)
        assert (await store.view([7])).get(7).latency_p50_ms == pytest.approx(100)
        clock.advance(1)
        await store.record(7, ok=True, latency_ms=700)
        assert (await store.view([7])).get(7).latency_p50_ms == pytest.approx(700)

    run(kind, body, throttled)


def test_it_keeps_working_when_each_call_runs_in_a_new_event_loop() -> None:
    store = RedisHealthStore(_redis_url(), CONFIG)
    for org in range(3):
        asyncio.run(store.record(11, ok=False, org_id=org))
    assert asyncio.run(store.view([11])).get(11).circuit_open is True
    asyncio.run(store.close())


def test_it_steers_routing_away_from_a_broken_endpoint_and_back_after_the_probe() -> None:
    import random

    from proxy.routing import RouteRequest, route
    from tests.proxy.routing.support import USD_PER_MTOK, cand, catalog, model

    cat = catalog(
        model("acme/model", cand("cheap", endpoint_id=301), cand("dear", prompt=9 * USD_PER_MTOK, endpoint_id=302))
    )
    req = RouteRequest(models=("acme/model",))

    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 301, times=3)
        plan = route(req, cat, await store.view([301, 302]), random.Random(1))
        assert [a.candidate.tag for a in plan.attempts] == ["dear"]
        clock.advance(10)
        plan = route(req, cat, await store.view([301, 302]), random.Random(1))
        assert [a.candidate.tag for a in plan.attempts] == ["cheap", "dear"]  # the probe, then the fallback
        await succeed(store, 301)
        plan = route(req, cat, await store.view([301, 302]), random.Random(1))
        assert sorted(a.candidate.tag for a in plan.attempts) == ["cheap", "dear"]

    run("redis", body)


@KINDS
def test_one_tenants_failures_never_open_the_circuit_for_everyone(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 7, times=CONFIG.cb_failures * 4, orgs=(42,))
        assert (await store.view([7])).get(7).circuit_open is False
        # A second organization failing too is evidence about the provider.
        await fail(store, 7, times=1, orgs=(43,))
        assert (await store.view([7])).get(7).circuit_open is True

    run(kind, body)


@KINDS
def test_another_tenants_failure_outside_the_window_does_not_count(kind: str) -> None:
    async def body(make: StoreFactory, clock: Clock) -> None:
        store = make()
        await fail(store, 8, times=1, orgs=(43,))
        clock.advance(CONFIG.cb_window_s + 11)
        await fail(store, 8, times=CONFIG.cb_failures * 2, orgs=(42,))
        assert (await store.view([8])).get(8).circuit_open is False

    run(kind, body)
