"""One settlement worker's loop, for the gateway benchmark and the soak: what settling costs per event.

    DATABASE_URL=... REDIS_URL=... taskset -c 0 .venv/bin/python benchmarks/settle_drain.py [--follow]

Runs `billing.settlement.settle_pending` (what the Celery task `billing.settle_usage` runs) in a loop:
until the usage streams are empty, or with `--follow` until SIGTERM, sleeping 50 ms when a pass finds
nothing. Prints one JSON line: events settled, wall and CPU seconds of this process (the worker's own
cost: PostgreSQL and Redis work on their own processes, which the caller measures as core busy time).
The Celery wrapper around each task call (a broker message per beat tick) is left out: it is per
batch of up to BATCH_SIZE events, not per event.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")

import django

django.setup()

from billing.settlement import settle_pending  # noqa: E402

_stop = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    global _stop
    _stop = True


def main(follow: bool) -> None:
    signal.signal(signal.SIGTERM, _on_term)
    started, cpu0 = time.perf_counter(), time.process_time()
    events = 0
    while not _stop:
        done = settle_pending()
        events += done
        if not done:
            if not follow:
                break
            time.sleep(0.05)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(json.dumps({"events": events, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--follow", action="store_true", help="keep settling until SIGTERM")
    main(parser.parse_args().follow)
