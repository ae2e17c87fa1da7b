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


def load_env_file(path: str | os.PathLike[str]) -> list[str]:
    """Put `KEY=VALUE` lines of an env file (`.env`) into the environment; returns the names it set.

    The real environment wins (a variable already set is left alone) and an empty value counts as
    unset, so a copied `.env.example` changes nothing it leaves blank. Not shell syntax: nothing is
    expanded or executed (values such as `Name <a@b>` would break `source .env`); `export ` and one
    pair of surrounding quotes are accepted. Called by the entry points (manage.py, asgi, celery)
    before settings load, never by settings itself, so the test suite does not read a developer's .env.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    loaded = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        name = name.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if not name.isidentifier() or not value or name in os.environ:
            continue
        os.environ[name] = value
        loaded.append(name)
    return loaded
