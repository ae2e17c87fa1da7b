"""The gate's Lua sources (billing/gate/lua/), read once per process."""

from __future__ import annotations

import functools
from pathlib import Path

_DIR = Path(__file__).with_name("lua")
_NEEDS_RELEASE = ("finish", "expire")


@functools.cache
def source(name: str) -> str:
    text = (_DIR / f"{name}.lua").read_text()
    if name in _NEEDS_RELEASE:
        text = (_DIR / "release.lua").read_text() + "\n" + text
    return text
