"""What the streaming relay costs per upstream event, with no I/O: SSE bytes in, the client's chunks out.

    .venv/bin/python benchmarks/stream_events.py [--compare /path/to/older/checkout] [--rounds 5]

Each row is one OpenAI-dialect stream built by tests/mockprovider (the same frames the mock provider
sends), fed to `proxy.gateway.relay.EventRelay` as one read, as the gateway does when a read holds the
whole stream: SSE decoding, the provider's stream parser, the output bound, what the client receives,
the tool-call collector and the chunk writer. Every measurement runs in a child process pinned to core
0 (a single thread on one core: the row is limited by that core, nothing else); with `--compare` the
two checkouts alternate round by round, and the best of each is compared. Checkouts from before
EventRelay existed are driven through the loop streaming.py had then.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _streams() -> dict[str, bytes]:
    from tests.mockprovider.formats import Reply, ToolCall, openai_stream

    def stream(content: int, reasoning: int = 0, tools: int = 0) -> bytes:
        calls = tuple(ToolCall(id=f"call_{i}", name="get_weather", arguments={"city": "Paris"}) for i in range(tools))
        reply = Reply(
            id="bench",
            model="bench-model",
            created=1_800_000_000,
            content=tuple(f" t{i}" for i in range(content)),
            reasoning=tuple(f" r{i}" for i in range(reasoning)),
            tool_calls=calls,
            prompt_tokens=12,
            completion_tokens=content + reasoning,
            reasoning_tokens=reasoning,
            usage=True,
        )
        return b"".join(frame.data for frame in openai_stream(reply, include_usage=True))

    return {
        "text, 50 chunks": stream(50),
        "reasoning 20 + text 30": stream(30, reasoning=20),
        "text 10 + 2 tool calls": stream(10, tools=2),
    }


def _relay(data: bytes) -> Any:
    """One stream through this checkout's relay; returns the bytes for the client."""
    from proxy.gateway.call import Outcome
    from proxy.gateway.shape import ChunkWriter
    from proxy.providers.openai import OpenAIStreamParser

    writer = ChunkWriter(generation_id="gen-bench", created=1, model="bench/model", provider_name="Bench", legacy=False)
    outcome = Outcome(attempt=None, usage=None, streamed=True)  # type: ignore[arg-type]
    try:
        from proxy.gateway.relay import EventRelay
    except ImportError:
        return _relay_before(data, writer, outcome)
    relay = EventRelay(OpenAIStreamParser(), writer, outcome, bound=10**6)
    return relay.feed(data, first=True) + relay.flush()


def _relay_before(data: bytes, writer: Any, outcome: Any) -> bytes:
    """The per-read loop of streaming.py before EventRelay (commit a482ecf and earlier)."""
    from proxy.gateway import streaming
    from proxy.plugins.tool_calls import ToolCallCollector
    from proxy.providers.openai import OpenAIStreamParser
    from proxy.sse import SSEDecoder

    decoder, parser, tool_calls, pieces = SSEDecoder(), OpenAIStreamParser(), ToolCallCollector(), dict[int, int]()
    out: list[bytes] = []
    for event in decoder.feed(data):
        choices = parser.feed(event)
        if choices:
            if streaming._count_deltas(pieces, choices) > 10**6:  # type: ignore[attr-defined]
                break
            streaming._observe(outcome, choices, first=not out, exclude=False)  # type: ignore[attr-defined]
            tool_calls.feed(choices)
            out.append(writer.choices(choices))
    return b"".join(out)


def child(number: int) -> None:
    os.sched_setaffinity(0, {0})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
    import django

    django.setup()
    rows: dict[str, dict[str, float]] = {}
    for name, data in _streams().items():
        sent = _relay(data)
        seconds = min(timeit.repeat(lambda data=data: _relay(data), number=number, repeat=3)) / number
        digest = int.from_bytes(hashlib.blake2b(sent, digest_size=6).digest(), "big")
        rows[name] = {"us_per_stream": seconds * 1e6, "events": data.count(b"\n\n"), "sent_digest": digest}
    print(json.dumps(rows))


def measure(checkout: Path, number: int) -> dict[str, dict[str, float]]:
    # The child imports the checkout's code: its directory first on sys.path, this script's harness after.
    code = (
        f"import sys, runpy; sys.path[:0] = [{str(checkout)!r}, {str(REPO)!r}]; "
        f"runpy.run_path({__file__!r}, run_name='__child__')"
    )
    argv = [sys.executable, "-c", code, str(number)]
    out = subprocess.run(argv, cwd=checkout, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, help="an older checkout to measure in the same run")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per checkout (alternating with --compare)")
    parser.add_argument("--number", type=int, default=500, help="streams per timing")
    args = parser.parse_args()
    checkouts = {"this checkout": REPO, **({"baseline": args.compare.resolve()} if args.compare else {})}
    best: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(args.rounds):
        for label, path in checkouts.items():
            for row, value in measure(path, args.number).items():
                kept = best.setdefault(label, {}).get(row)
                if kept is None or value["us_per_stream"] < kept["us_per_stream"]:
                    best[label][row] = value
    print(f"best of {args.rounds} rounds, one process pinned to core 0 (it saturates that core: a pure CPU loop)")
    print(f"{'':24s} {'checkout':14s} {'events':>6s} {'us/stream':>10s} {'us/event':>9s}")
    for row in best["this checkout"]:
        for label in checkouts:
            v = best[label][row]
            per_event = v["us_per_stream"] / v["events"]
            print(f"{row:24s} {label:14s} {v['events']:6.0f} {v['us_per_stream']:10.1f} {per_event:9.2f}")
        if args.compare:
            new, old = best["this checkout"][row], best["baseline"][row]
            ratio = new["us_per_stream"] / old["us_per_stream"]
            same = "the same bytes out" if new["sent_digest"] == old["sent_digest"] else "DIFFERENT bytes out"
            print(f"{'':24s} this checkout vs baseline: CPU x{ratio:.3f} ({same})")


if __name__ == "__main__":
    main()
elif __name__ == "__child__":
    child(int(sys.argv[1]))
