"""Re-encrypt every stored prompt log with the first key in PROMPT_LOG_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from billing.prompt_log import prompt_log_generate_key, prompt_log_rotate


class Command(BaseCommand):
    help = (
        "Rotate prompt-log encryption: put a new key first in PROMPT_LOG_ENCRYPTION_KEYS (keep the old ones "
        "after it), run this, then remove the old keys. --generate prints a fresh key and changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--generate", action="store_true", help="Print a new Fernet key and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["generate"]:
            self.stdout.write(prompt_log_generate_key())
            return
        count = prompt_log_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} prompt log(s) with the first key."))
