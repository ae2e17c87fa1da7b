"""The gateway's pipelined Redis connection (common.redis.hot_script), against the real Redis.

It carries every credit admission and settlement, so it must give each caller its own reply under
concurrency, survive a flushed script cache and a killed connection, and fail (never hang) when
Redis stops answering.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from common.redis import HotConnection, RedisError, ResponseError, hot_script, sync_redis

ECHO = "return {KEYS[1], ARGV[1], ARGV[2], ARGV[3]}"


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(main())


def test_keys_and_arguments_of_each_type_arrive_as_sent() -> None:
    async def main() -> Any:
        echo = hot_script(ECHO)
        return await echo(keys=["k:é"], args=["text", 12345678901234, b"\x00raw\r\n"])

    assert run(main) == [b"k:\xc3\xa9", b"text", b"12345678901234", b"\x00raw\r\n"]


def test_concurrent_callers_each_get_their_own_reply() -> None:
    async def main() -> list[Any]:
        echo = hot_script(ECHO)
        return await asyncio.gather(*(echo(keys=[f"k{i}"], args=[i, "x" * (i % 50), -i]) for i in range(2_000)))

    replies = run(main)
    assert replies == [[f"k{i}".encode(), str(i).encode(), b"x" * (i % 50), str(-i).encode()] for i in range(2_000)]


def test_commands_of_one_loop_iteration_share_one_write() -> None:
    """2,000 concurrent scripts reach Redis in a handful of socket reads, not 2,000."""
    client = sync_redis()

    def reads() -> int:
        return int(client.info("stats")["total_reads_processed"])

    async def main() -> None:
        echo = hot_script(ECHO)
        await echo(keys=["warm"], args=[1, 2, 3])  # connect and load outside the count
        before = reads()
        await asyncio.gather(*(echo(keys=["k"], args=[i, 0, 0]) for i in range(2_000)))
        # The INFO call itself is one read; the batch is at most a few (one write, split by the kernel).
        assert reads() - before < 20

    run(main)


def test_writes_land_in_the_urls_database() -> None:
    setter = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"

    async def main() -> Any:
        return await hot_script(setter)(keys=["hot:db"], args=["v"])

    assert run(main) == b"v"
    assert sync_redis().get("hot:db") == b"v"  # the test db of REDIS_URL, chosen by SELECT


def test_a_flushed_script_cache_is_reloaded() -> None:
    async def main() -> tuple[Any, Any]:
        echo = hot_script(ECHO)
        first = await echo(keys=["a"], args=[1, 2, 3])
        sync_redis().script_flush()
        return first, await echo(keys=["b"], args=[4, 5, 6])

    assert run(main) == ([b"a", b"1", b"2", b"3"], [b"b", b"4", b"5", b"6"])


def test_an_error_reply_raises_for_its_caller_only() -> None:
    async def main() -> tuple[BaseException | Any, ...]:
        boom = hot_script("return redis.error_reply('ERR boom ' .. ARGV[1])")
        echo = hot_script(ECHO)
        return tuple(
            await asyncio.gather(boom(keys=["k"], args=["x"]), echo(keys=["k"], args=[1, 2, 3]), return_exceptions=True)
        )

    failed, fine = run(main)
    assert isinstance(failed, ResponseError)
    assert "boom x" in str(failed)
    assert fine == [b"k", b"1", b"2", b"3"]


def test_a_killed_connection_fails_in_flight_calls_and_the_next_call_reconnects() -> None:
    async def main() -> tuple[Any, ...]:
        echo = hot_script(ECHO)
        mux = echo.mux
        await echo(keys=["k"], args=[1, 2, 3])
        client_id = await mux.execute("CLIENT", "ID")
        # A blocking pop waits on the server without blocking Redis, so the kill lands mid-call.
        in_flight = asyncio.ensure_future(mux.execute("BLPOP", "hot:nothing", 5))
        await asyncio.sleep(0.2)
        sync_redis().client_kill_filter(_id=client_id)
        outcome = await asyncio.gather(in_flight, return_exceptions=True)
        again = await echo(keys=["k2"], args=[4, 5, 6])
        mux.close()
        return outcome[0], again, await _new_client_id(mux) != client_id

    lost, again, reconnected = run(main)
    assert isinstance(lost, RedisError)
    assert again == [b"k2", b"4", b"5", b"6"]
    assert reconnected


def test_a_call_on_a_connection_dropped_under_it_runs_again_on_a_new_one() -> None:
    async def main() -> tuple[Any, Any]:
        echo = hot_script(ECHO)
        await echo(keys=["k"], args=[1, 2, 3])
        client_id = await echo.mux.execute("CLIENT", "ID")
        sync_redis().client_kill_filter(_id=client_id)
        # No await in between: the loop has not yet seen the close, so this goes out on the dead socket.
        return await echo(keys=["k2"], args=[4, 5, 6]), await _new_client_id(echo.mux)

    again, new_id = run(main)
    assert again == [b"k2", b"4", b"5", b"6"]
    assert new_id != b"0"


async def _new_client_id(mux: HotConnection) -> Any:
    return await mux.execute("CLIENT", "ID")


def test_a_server_that_stops_answering_times_out_instead_of_hanging() -> None:
    async def main() -> tuple[BaseException, float, BaseException]:
        accepted: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # reads nothing, answers nothing

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        mux = HotConnection({"host": "127.0.0.1", "port": port}, timeout_s=0.3)
        started = time.monotonic()
        first = await asyncio.gather(mux.execute("PING"), return_exceptions=True)
        waited = time.monotonic() - started
        second = await asyncio.gather(mux.execute("PING"), return_exceptions=True)  # reconnects, times out again
        server.close()
        return first[0], waited, second[0]

    first, waited, second = run(main)
    assert isinstance(first, RedisError) and "within 0.3s" in str(first)
    assert 0.3 <= waited < 1.5
    assert isinstance(second, RedisError)


def test_an_unreachable_server_is_a_connection_error() -> None:
    async def main() -> BaseException:
        import socket

        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mux = HotConnection({"host": "127.0.0.1", "port": port}, timeout_s=1)
        return (await asyncio.gather(mux.execute("PING"), return_exceptions=True))[0]

    error = run(main)
    assert isinstance(error, RedisError)
    assert "connecting to Redis" in str(error)


@pytest.mark.parametrize("bad", [True, None, 1.5j])
def test_an_argument_redis_cannot_take_is_refused_before_sending(bad: object) -> None:
    async def main() -> BaseException:
        echo = hot_script(ECHO)
        return (await asyncio.gather(echo(keys=["k"], args=[bad, 1, 2]), return_exceptions=True))[0]

    assert isinstance(run(main), RedisError)


def test_numbers_are_sent_as_their_digits() -> None:
    class Tier(enum.IntEnum):
        GOLD = 3

    async def main() -> Any:
        return await hot_script(ECHO)(keys=["k"], args=[Tier.GOLD, 1.5, -(2**63)])

    assert run(main) == [b"k", b"3", b"1.5", b"-9223372036854775808"]


def test_text_goes_as_utf_8_and_bytes_as_they_are() -> None:
    async def main() -> Any:
        return await hot_script(ECHO)(keys=["k"], args=["café", b"\xff\x00", 2.5e-7])

    assert run(main) == [b"k", "café".encode(), b"\xff\x00", b"2.5e-07"]


def test_a_refused_handshake_leaves_no_connection_behind() -> None:
    client = sync_redis()

    def connections() -> int:
        return len(client.client_list())

    async def main() -> tuple[BaseException, int, int]:
        before = connections()
        connection = HotConnection(
            {"host": "127.0.0.1", "port": client.connection_pool.connection_kwargs["port"], "db": 999}
        )
        refused = (await asyncio.gather(connection.execute("PING"), return_exceptions=True))[0]
        await asyncio.sleep(0.05)  # let the server see the close
        return refused, before, connections()

    refused, before, after = run(main)
    assert isinstance(refused, ResponseError) and "DB index" in str(refused)
    assert after == before
