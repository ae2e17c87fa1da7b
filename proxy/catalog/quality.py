"""The quality figures the auto router weighs, taken from the snapshots for the catalog file.

Beside each record (the catalog entry's `quality`), never in it: records stay OpenRouter's verbatim.
Keys: intelligence, coding, agentic (Artificial Analysis indices, 0-100) and arena_rank,
arena_coding_rank (LMArena, 1 = best). The loader keeps them in Model.extra["_quality"].
"""

from __future__ import annotations

from typing import Any

_AA_KEYS = (
    ("intel", "intelligence_index", "intelligence"),
    ("coding", "coding_index", "coding"),
    ("agentic", "agentic_index", "agentic"),
)


def quality_of(record: dict[str, Any], entry: dict[str, Any] | None) -> dict[str, float]:
    """The figures the auto router weighs (docs/routing.md), for the catalog entry's `quality`.

    From the record's own `benchmarks.artificial_analysis` (OpenRouter's), else the endpoints
    snapshot's newer `intel` / `coding` / `agentic`; arena ranks (1 = best) from the endpoints
    snapshot's LMArena data. Beside the record, never in it: records stay OpenRouter's, verbatim."""
    aa = (record.get("benchmarks") or {}).get("artificial_analysis") or {}
    entry = entry or {}
    quality: dict[str, float] = {}
    for ours, theirs, name in _AA_KEYS:
        value = aa.get(theirs)
        if not isinstance(value, int | float):
            value = entry.get(ours)
        if isinstance(value, int | float) and not isinstance(value, bool):
            quality[name] = value
    raw_arena = entry.get("arena")
    arena: dict[str, Any] = raw_arena if isinstance(raw_arena, dict) else {}
    for key, name in (("overall", "arena_rank"), ("coding", "arena_coding_rank")):
        if isinstance(arena.get(key), int):
            quality[name] = arena[key]
    return quality
