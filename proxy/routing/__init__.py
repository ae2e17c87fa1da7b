"""Routing: which endpoints a request is tried on, and in what order (contract 10; docs/routing.md).

Three steps, the middle one the only I/O and not done here:

1. `resolve(req, catalog, rng)` (resolve.py): requested ids become targets (variant suffixes,
   `openrouter/auto` / `openrouter/free` expanded by auto.py), each keeping the endpoints that pass
   the hard filters and the credential filter (filters.py);
2. the caller reads health for exactly `Resolved.endpoint_ids` (one Redis round trip);
3. `plan(resolved, health, rng)` (order.py) skips open circuits and orders the rest.

`route()` runs 1 and 3 around a health view already in hand: pure, so it is tested without a
network, a database or a clock.
"""

from __future__ import annotations

import random

from proxy.catalog.snapshot import CatalogSnapshot
from proxy.health import HealthView
from proxy.routing.filters import matches
from proxy.routing.order import plan
from proxy.routing.prefs import RoutingError, parse_provider_prefs, prefs_with_route
from proxy.routing.resolve import Resolved, resolve
from proxy.routing.types import Attempt, RoutePlan, RouteRequest

__all__ = [
    "Attempt",
    "Resolved",
    "RoutePlan",
    "RouteRequest",
    "RoutingError",
    "matches",
    "parse_provider_prefs",
    "plan",
    "prefs_with_route",
    "resolve",
    "route",
]


def route(req: RouteRequest, catalog: CatalogSnapshot, health: HealthView, rng: random.Random) -> RoutePlan:
    """The ordered attempts for a request. Pure; raises `RoutingError` (400/404/503), never anything else."""
    return plan(resolve(req, catalog, rng), health, rng)
