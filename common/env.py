"""Reading configuration from the environment, with safe local defaults."""

from __future__ import annotations

import os


def env_str(name: str, default: str = "") -> str:
    """A string setting; `NAME_FILE` wins so Docker secrets work without a wrapper script."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_with_suffix(*suffixes: str) -> dict[str, str]:
    """Every non-empty variable whose name ends with one of `suffixes`, for open-ended families such
    as `<SLUG>_API_KEY` whose names are not known when settings load."""
    return {name: value.strip() for name, value in os.environ.items() if name.endswith(suffixes) and value.strip()}
