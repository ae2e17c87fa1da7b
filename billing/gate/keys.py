"""Every Redis key the credit gate and the usage queue use, and how long each lives.

The Lua scripts never spell a key: they get names in KEYS, or a prefix in ARGV where the key is only
known inside the script (a reservation's org and key, a settled generation). Renaming a key here is
the whole change. The embedded gate names its dict entries with the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable

ORG_PREFIX = "gate:o:"  # hash: cin, ver, bought, spent, res, uns, ld (the org's credit mirror)
KEY_PREFIX = "gate:k:"  # hash: res, ld (the key's open holds; loaded marker)
SETTLED_PREFIX = "gate:s:"  # string per generation id: its unsettled charge was already subtracted
FREE_MINUTE_PREFIX = "gate:fm:"  # zset: a key's free-model requests in the last minute (a sliding window)
RESERVATIONS = "gate:rs"  # hash: reservation id -> "org_id|key_hash|org_hold|key_hold"
DEADLINES = "gate:rz"  # zset: reservation id by the unix second its hold expires
STREAM = "gate:q"  # stream: finished requests waiting for settlement

WINDOW_TTL = 40 * 86400  # a monthly usage window must outlive its month
BYOK_COUNTER_TTL = 40 * 86400  # the monthly BYOK request counter, likewise
FREE_WINDOW_MS = 60_000  # the free-model per-minute limit counts the last 60 s, not a calendar minute
FREE_DAY_TTL = 2 * 86400  # a UTC day plus slack for clocks


def org(org_id: int) -> str:
    return f"{ORG_PREFIX}{org_id}"


def key(key_hash: str) -> str:
    return f"{KEY_PREFIX}{key_hash}"


def usage_window(key_hash: str, window: str) -> str:
    """A key's usage in one window ("all", or a period id such as "d20250101"): hash u (charged), b (BYOK)."""
    return f"gate:ku:{key_hash}:{window}"


def usage_windows(key_hash: str, windows: Iterable[str]) -> list[str]:
    return [usage_window(key_hash, w) for w in windows]


def free_minute(key_hash: str) -> str:
    """A key's admitted free-model requests of the last FREE_WINDOW_MS, scored by admission time (ms)."""
    return f"{FREE_MINUTE_PREFIX}{key_hash}"


def free_day(org_id: int, day: str) -> str:
    """Free-model requests of an organization in one UTC day (the daily cap is per organization)."""
    return f"gate:fd:{org_id}:{day}"


def byok_month(org_id: int, month: str) -> str:
    """BYOK requests of an organization in one UTC month (the free BYOK allowance)."""
    return f"gate:bq:{org_id}:{month}"


def finished(reservation_id: str) -> str:
    """The charge finish() decided for a reservation, so a retried finish() charges nothing twice."""
    return f"gate:f:{reservation_id}"


def resync(org_id: int) -> str:
    """Set for a few seconds after a refusal re-read the org's ledger, so refusals cannot hammer it."""
    return f"gate:rsync:{org_id}"
