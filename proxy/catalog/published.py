"""An endpoint's published figures (uptime, latency, throughput) from its endpoints-snapshot row.

Routing and /endpoints use them until this gateway has measured the endpoint itself
(docs/routing.md "Seeded statistics"); the operator may set or correct them in the admin.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

_LATENCY_KEYS = ("latency_30m", "latency_last_30m")
_THROUGHPUT_KEYS = ("throughput_30m", "throughput_last_30m")


def published_stats(row: dict[str, Any]) -> dict[str, Any]:
    """The row's published figures, only those present: uptime as a percent decimal string (1-day,
    else 30-minute), latency in ms and throughput in tokens/s as whole numbers. Today's snapshots
    carry uptimes only; a latency or throughput there is taken as OpenRouter's /endpoints reports
    it (a number, or percentiles whose p50 is used)."""
    out: dict[str, Any] = {}
    uptime = row.get("uptime_1d") if _is_number(row.get("uptime_1d")) else row.get("uptime_30m")
    if _is_number(uptime):
        percent = min(max(Decimal(str(uptime)), Decimal(0)), Decimal(100))
        out["uptime"] = str(percent.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))
    for key, sources in (("latency_ms", _LATENCY_KEYS), ("throughput_tps", _THROUGHPUT_KEYS)):
        value = next((v for k in sources if (v := _p50(row.get(k))) is not None), None)
        if value is not None:
            out[key] = int(Decimal(str(value)).to_integral_value(rounding=ROUND_HALF_EVEN))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _p50(value: Any) -> float | int | None:
    if isinstance(value, dict):
        value = value.get("p50")
    return value if _is_number(value) and value >= 0 else None


def published_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A catalog file endpoint's `published` object as Endpoint column values (None where absent)."""
    published = entry.get("published") or {}
    uptime, latency, tps = (published.get(k) for k in ("uptime", "latency_ms", "throughput_tps"))
    return {
        "published_uptime": None if uptime is None else Decimal(str(uptime)).quantize(Decimal("0.01")),
        "published_latency_ms": None if latency is None else int(latency),
        "published_throughput_tps": None if tps is None else int(tps),
    }
