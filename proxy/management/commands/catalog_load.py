"""catalog_load [FILE]: load a catalog file (default settings.CATALOG_FILE) into the database."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from proxy.catalog.services import CatalogError, catalog_load


class Command(BaseCommand):
    # Scriptable and fast: no URL/system checks (migrate runs those); they would also make the
    # CLI depend on every view module importing cleanly.
    requires_system_checks: list[str] = []
    help = "Upsert the model catalog from FILE (format: docs/catalog.md). Idempotent; absent endpoints are disabled."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", metavar="FILE", help="default: settings.CATALOG_FILE")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"] or settings.CATALOG_FILE
        try:
            result = catalog_load(path=path)
        except CatalogError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"catalog loaded from {path}: {result.models} models, {result.endpoints} endpoints, "
            f"{result.providers} providers ({result.endpoints_retired} endpoints retired)"
        )
