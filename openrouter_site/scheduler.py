"""The in-process scheduler: runs CELERY_BEAT_SCHEDULE inside the web process when no Celery beat runs.

The embedded default (`make run`) has no broker, hence no worker and no beat, yet settlement, expired
holds, crypto scans and auto top-up checks must still happen. One daemon thread calls each scheduled
task's function when it is due (the same functions a worker runs). Settings turn it on by default only
without a broker (IN_PROCESS_SCHEDULER), so a deployment with beat never runs the work twice.

The last run of every entry is kept on disk (SCHEDULER_STATE_FILE), like beat's schedule file: a
restart does not rerun work that was done moments ago, and a long-interval entry is not pushed back
by every restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import BaseSchedule, schedule
from django.conf import settings
from django.db import connections

logger = logging.getLogger("openrouter_site.scheduler")

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]
IDLE_MAX_SECONDS = 5.0  # the longest the thread sleeps between checks (a stop is noticed at once)


def _as_schedule(value: object, app: Celery) -> BaseSchedule:
    """A beat entry's schedule: seconds, a timedelta, or any Celery schedule (crontab, ...)."""
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, int | float):
        return schedule(timedelta(seconds=value), app=app)
    if isinstance(value, timedelta):
        return schedule(value, app=app)
    raise TypeError(f"unsupported beat schedule: {value!r}")


class Scheduler:
    def __init__(
        self,
        entries: Mapping[str, Mapping[str, object]],
        *,
        state_file: Path | None = None,
        run_task: Callable[[str], object] | None = None,
    ) -> None:
        from openrouter_site.celery import app

        self._app = app
        self._entries: dict[str, tuple[str, BaseSchedule]] = {
            name: (str(entry["task"]), _as_schedule(entry["schedule"], app)) for name, entry in entries.items()
        }
        self._state_file = state_file
        self._run_task = run_task or self._call_task
        self._last_run: dict[str, datetime] = self._load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._app.loader.import_default_modules()  # registers the tasks (Celery's autodiscovery is lazy)
        self._thread = threading.Thread(target=self._loop, name="in-process-scheduler", daemon=True)
        self._thread.start()
        logger.info("in-process scheduler started: %s", ", ".join(sorted(self._entries)))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.run_due()
            finally:
                connections.close_all()  # this thread's own connections: none left open while it sleeps
            self._stop.wait(min(wait, IDLE_MAX_SECONDS))

    def run_due(self) -> float:
        """Run every entry that is due, once; returns the seconds until the next one is due."""
        next_in = IDLE_MAX_SECONDS
        ran = False
        for name, (task, every) in self._entries.items():
            last = self._last_run.get(name)
            due, wait = (True, 0.0) if last is None else every.is_due(last)
            if due:
                started = datetime.now(UTC)  # like beat: the interval counts from the start of a run
                self._run(name, task)
                self._last_run[name] = started
                ran = True
                _, wait = every.is_due(started)
            next_in = min(next_in, max(float(wait), 0.1))
        if ran:
            self._save()
        return next_in

    def _run(self, name: str, task: str) -> None:
        try:
            self._run_task(task)
        except Exception:
            # One failing entry (an unreachable chain RPC) must not stop the others; it runs again when due.
            logger.exception("scheduled task %s (%s) failed", name, task)

    def _call_task(self, task: str) -> object:
        return self._app.tasks[task]()  # a plain call runs the task body here, synchronously

    # --- state on disk ---------------------------------------------------------------------------

    def _load(self) -> dict[str, datetime]:
        if self._state_file is None:
            return {}
        try:
            raw = json.loads(self._state_file.read_text(encoding="utf-8"))
            return {name: datetime.fromisoformat(at) for name, at in raw.items() if name in self._entries}
        except (OSError, ValueError, AttributeError, TypeError):
            return {}  # no file yet, or an unreadable one: everything is simply due

    def _save(self) -> None:
        if self._state_file is None:
            return
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({n: at.isoformat() for n, at in self._last_run.items()}), encoding="utf-8")
            os.replace(tmp, self._state_file)
        except OSError:
            logger.warning("cannot write %s; the schedule restarts from scratch next time", self._state_file)

    @property
    def last_run(self) -> Mapping[str, datetime]:
        return dict(self._last_run)


def with_scheduler(app: ASGIApp, scheduler: Scheduler | None = None) -> ASGIApp:
    """Wrap the ASGI app so the scheduler starts and stops with the server's lifespan, if enabled."""
    if not settings.IN_PROCESS_SCHEDULER:
        return app
    if scheduler is None:
        scheduler = Scheduler(settings.CELERY_BEAT_SCHEDULE, state_file=Path(settings.SCHEDULER_STATE_FILE))

    async def application(scope: Scope, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scheduler.start()
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(scheduler.stop)
            return message

        await app(scope, lifespan_receive, send)

    return application
