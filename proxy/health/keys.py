"""Every Redis key of endpoint health (proxy/health/lua gets them in KEYS, never spells one).

One endpoint's keys share the hash tag `{e<id>}`, so record.lua and view.lua, which touch only one
endpoint's keys per call, run on Redis Cluster; a read of several endpoints is one call per endpoint
(pipelined), never one script over several tags.
"""

from __future__ import annotations

import re

KEY_PREFIX = "health:"
PATTERN = KEY_PREFIX + "{e*}"  # SCAN match of every endpoint's keys (braces are literal in a glob)
_STATE = re.compile(r"^health:\{e(\d+)\}$")


def endpoint(endpoint_id: int) -> str:
    """The endpoint's state hash: slot ring, breaker (`o` open until, `p` probe), p50s, tool ring."""
    return f"{KEY_PREFIX}{{e{endpoint_id}}}"


def record_keys(endpoint_id: int) -> list[str]:
    """record.lua's KEYS: state, per-minute ok and error counts, latency samples, failing orgs."""
    state = endpoint(endpoint_id)
    return [state, f"{state}:mok", f"{state}:merr", f"{state}:s", f"{state}:fo"]


def endpoint_of(name: str) -> int | None:
    """The endpoint id when `name` is an endpoint's state hash (not one of its side keys)."""
    found = _STATE.match(name)
    return int(found.group(1)) if found else None
