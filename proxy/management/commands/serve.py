"""serve: run the site under uvicorn on settings.HOST / settings.PORT (what `make run` ends with).

A management command rather than a bare `uvicorn` call so the server sees exactly the configuration
every other command sees: manage.py has read `.env` by then, and HOST, PORT and ACCESS_LOG come
from settings like everything else. One process: the embedded default's in-memory state (credit gate,
scheduler) is per process. Production runs uvicorn itself with workers (compose.yaml).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    requires_system_checks: list[str] = []
    help = "Serve the site under uvicorn on HOST:PORT (settings; .env is read by manage.py)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="default: settings.HOST")
        parser.add_argument("--port", type=int, default=None, help="default: settings.PORT")

    def handle(self, *args: Any, **options: Any) -> None:
        import uvicorn

        host = options["host"] or settings.HOST
        port = options["port"] or settings.PORT
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104  # a wildcard is not a URL
        scheduler = "on" if settings.IN_PROCESS_SCHEDULER else "off (Celery beat runs it)"
        self.stdout.write(
            f"Serving http://{shown}:{port}/  (API base URL http://{shown}:{port}/api/v1)\n"
            f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}; "
            f"periodic tasks in process: {scheduler}; access log: {'on' if settings.ACCESS_LOG else 'off'} "
            "(ACCESS_LOG=true). Ctrl+C stops.",
        )
        self.stdout.flush()
        uvicorn.run(
            "openrouter_site.asgi:application",
            host=host,
            port=port,
            access_log=settings.ACCESS_LOG,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
