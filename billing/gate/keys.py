"""Every Redis key the credit gate and the usage queue use, and how long each lives.

The Lua scripts never spell a key: they get names in KEYS, or a prefix in ARGV where the key is only
known inside the script (a reservation's org and key, a settled generation). Renaming a key here is
the whole change. The embedded gate names its dict entries with the same functions.

Redis Cluster: a script may only touch keys of one hash slot. Every gate key belongs to one shard,
`shard(org_id) = org_id % GATE_SHARDS`, and carries the shard's hash tag `{s<n>}`: an organization's
credit mirror, its keys' holds and windows, its counters, the shard's reservation records and the
shard's usage stream all hash to one slot, so admit, finish, expire and the settlement ack stay single
scripts. Shards, not organizations, are the unit so that the usage stream (which finish appends to in
the same step) can share the slot while settlement reads a fixed, small set of streams. On one Redis
node the tags change nothing. GATE_SHARDS is fixed for the life of a Redis dataset: changing it
renames every key (see docs/architecture.md, "Scale-out").
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings

# Per-shard prefixes end in these; the shard's tag goes before them (`gate:{s3}:o:<org id>`).
ORG_PREFIX = "o:"  # hash: cin, ver, bought, spent, res, uns, ld (the org's credit mirror)
KEY_PREFIX = "k:"  # hash: res, ld (the key's open holds; loaded marker)
SETTLED_PREFIX = "s:"  # string per generation id: its unsettled charge was already subtracted
FREE_MINUTE_PREFIX = "fm:"  # zset: a key's free-model requests in the last minute (a sliding window)
RESERVATIONS = "rs"  # hash per shard: reservation id -> "org_id|key_hash|org_hold|key_hold"
DEADLINES = "rz"  # zset per shard: reservation id by the unix second its hold expires
STREAM = "q"  # stream per shard: finished requests waiting for settlement
# The daily free-model and monthly BYOK counters (the embedded gate saves these across restarts).
COUNTER_MARKERS = (":fd:", ":bq:")

WINDOW_TTL = 40 * 86400  # a monthly usage window must outlive its month
BYOK_COUNTER_TTL = 40 * 86400  # the monthly BYOK request counter, likewise
FREE_WINDOW_MS = 60_000  # the free-model per-minute limit counts the last 60 s, not a calendar minute
FREE_DAY_TTL = 2 * 86400  # a UTC day plus slack for clocks


def shards() -> int:
    return int(settings.GATE_SHARDS)


def shard(org_id: int) -> int:
    return org_id % shards()


def base(s: int) -> str:
    """`gate:{s<n>}:`, the start of every key of shard n (the braces are the Redis Cluster hash tag)."""
    return f"gate:{{s{s}}}:"


def org_prefix(s: int) -> str:
    return base(s) + ORG_PREFIX


def key_prefix(s: int) -> str:
    return base(s) + KEY_PREFIX


def settled_prefix(s: int) -> str:
    return base(s) + SETTLED_PREFIX


def reservations(s: int) -> str:
    return base(s) + RESERVATIONS


def deadlines(s: int) -> str:
    return base(s) + DEADLINES


def stream(s: int) -> str:
    return base(s) + STREAM


def streams() -> list[str]:
    """Every shard's usage stream (settlement, reconciliation and metrics read them all)."""
    return [stream(s) for s in range(shards())]


def org_pattern() -> str:
    """SCAN pattern of every org mirror of every shard (braces are literal in a glob)."""
    return "gate:{s*}:" + ORG_PREFIX + "*"


def org_id_of(name: str) -> int:
    """The org id of a name `org()` made."""
    return int(name.rsplit(":", 1)[1])


def org(org_id: int) -> str:
    return f"{org_prefix(shard(org_id))}{org_id}"


def key(org_id: int, key_hash: str) -> str:
    return f"{key_prefix(shard(org_id))}{key_hash}"


def usage_window(org_id: int, key_hash: str, window: str) -> str:
    """A key's usage in one window ("all", or a period id such as "d20250101"): hash u (charged), b (BYOK)."""
    return f"{base(shard(org_id))}ku:{key_hash}:{window}"


def usage_windows(org_id: int, key_hash: str, windows: Iterable[str]) -> list[str]:
    return [usage_window(org_id, key_hash, w) for w in windows]


def free_minute(org_id: int, key_hash: str) -> str:
    """A key's admitted free-model requests of the last FREE_WINDOW_MS, scored by admission time (ms)."""
    return f"{base(shard(org_id))}{FREE_MINUTE_PREFIX}{key_hash}"


def free_day(org_id: int, day: str) -> str:
    """Free-model requests of an organization in one UTC day (the daily cap is per organization)."""
    return f"{base(shard(org_id))}fd:{org_id}:{day}"


def byok_month(org_id: int, month: str) -> str:
    """BYOK requests of an organization in one UTC month (the free BYOK allowance)."""
    return f"{base(shard(org_id))}bq:{org_id}:{month}"


def finished(org_id: int, reservation_id: str) -> str:
    """The charge finish() decided for a reservation, so a retried finish() charges nothing twice."""
    return f"{base(shard(org_id))}f:{reservation_id}"


def resync(org_id: int) -> str:
    """Set for a few seconds after a refusal re-read the org's ledger, so refusals cannot hammer it."""
    return f"{base(shard(org_id))}rsync:{org_id}"
