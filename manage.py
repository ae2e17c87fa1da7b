#!/usr/bin/env python
import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openrouter_site.settings")
    # `.env` next to this file (see .env.example): read here, before settings load, so `make run` and
    # every operator command see the same configuration. The real environment wins.
    from common.env import load_env_file

    load_env_file(Path(__file__).resolve().parent / ".env")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
