"""Re-encrypt every BYOK secret with the first key in BYOK_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from organizations.byok import byok_generate_key, byok_rotate


class Command(BaseCommand):
    help = (
        "Rotate BYOK encryption: put a new key first in BYOK_ENCRYPTION_KEYS (keep the old ones after it), "
        "run this, then remove the old keys. --generate prints a fresh key and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--generate", action="store_true", help="Print a new Fernet key and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            self.stdout.write(byok_generate_key())
            return
        count = byok_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} provider key(s) with the first key."))
