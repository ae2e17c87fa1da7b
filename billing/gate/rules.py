"""The credit gate's rules, pure: what a request holds, whether it may run, what it costs, how a refusal reads.

Both gates decide with these numbers. The embedded gate calls the functions below; the Redis gate
computes every number here (the holds, the charge terms, caps, thresholds) and passes it to
lua/admit.lua and lua/finish.lua, which make the same comparisons against the shared counters in one
atomic step. A rule change is made here, and in the Lua only when a comparison itself changes (the
test in tests/billing/test_gate.py holds both gates to the same cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from billing.gate.contract import Admission
from billing.selectors import UsageWindows
from billing.usage import UsageEvent
from common.money import NANOS_PER_USD, fee_nanos, nanos_to_usd_number


@dataclass(frozen=True, slots=True)
class Limits:
    """The gate's settings. Read once and kept (seven settings lookups were 1.5% of a request's CPU):
    they change only with the process's environment, or in a test through override_settings, whose
    setting_changed signal drops the copy."""

    free_rpm: int
    free_rpd_no_credits: int
    free_rpd_with_credits: int
    free_credits_threshold_usd: int
    reservation_ttl_s: int
    byok_fee_percent: int
    byok_free_per_month: int

    @classmethod
    def current(cls) -> Limits:
        global _limits
        found = _limits
        if found is None:
            found = _limits = cls.from_settings()
        return found

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            free_rpm=settings.FREE_MODEL_RPM,
            free_rpd_no_credits=settings.FREE_MODEL_RPD_NO_CREDITS,
            free_rpd_with_credits=settings.FREE_MODEL_RPD_WITH_CREDITS,
            free_credits_threshold_usd=settings.FREE_MODEL_CREDITS_THRESHOLD_USD,
            reservation_ttl_s=settings.RESERVATION_TTL_SECONDS,
            byok_fee_percent=settings.BYOK_FEE_PERCENT,
            byok_free_per_month=settings.BYOK_FREE_REQUESTS_PER_MONTH,
        )

    @property
    def free_credits_threshold_nanos(self) -> int:
        return self.free_credits_threshold_usd * NANOS_PER_USD

    def free_daily_cap(self, purchased_nanos: int) -> tuple[int, bool]:
        """(free requests per day, whether the higher tier applies): top-ups, not grants, unlock it."""
        high = purchased_nanos >= self.free_credits_threshold_nanos
        return (self.free_rpd_with_credits if high else self.free_rpd_no_credits), high


_limits: Limits | None = None


@receiver(setting_changed)
def _settings_changed(**kwargs: object) -> None:
    global _limits
    _limits = None


@dataclass(frozen=True, slots=True)
class Periods:
    """Window ids for one instant: key-limit windows (UTC days, Monday weeks, months) and the free daily cap's day."""

    day: str
    week: str
    month: str
    day_reset_ms: int

    @classmethod
    def at(cls, ts: float) -> Periods:
        now = datetime.fromtimestamp(ts, UTC)
        w = UsageWindows.at(now)
        next_day = w.day + timedelta(days=1)
        return cls(
            day="d" + w.day.strftime("%Y%m%d"),
            week="w" + w.week.strftime("%Y%m%d"),
            month="m" + w.month.strftime("%Y%m"),
            day_reset_ms=int(next_day.timestamp() * 1000),
        )

    @property
    def windows(self) -> tuple[str, str, str, str]:
        """The usage windows a charge lands in: lifetime, day, week, month (the order of USAGE_NAMES)."""
        return ("all", self.day, self.week, self.month)

    def for_reset(self, limit_reset: str | None) -> str:
        return {"daily": self.day, "weekly": self.week, "monthly": self.month}.get(limit_reset or "", "all")


def now() -> float:
    return datetime.now(UTC).timestamp()


class Verdict(NamedTuple):
    """A gate decision: "ok", or a refusal with the number the message needs (and, for rpd, the tier)."""

    name: str
    value: int = 0
    extra: int = 0


OK = Verdict("ok")


@dataclass(frozen=True, slots=True)
class Hold:
    """What admission reserves on the organization's credit and on the key's limit."""

    org: int
    key: int


def hold_for(
    amount_nanos: int, *, is_byok: bool, include_byok_in_limit: bool, limits: Limits, plugin_nanos: int = 0
) -> Hold:
    """BYOK: the organization pays at most the fee, so only the fee is held on its credit (even inside
    the free allowance, so the fee can never overdraw); a key whose limit counts BYOK also holds the
    list cost. `plugin_nanos` (a web search's worst case) is the platform's cost: held in full either way."""
    if not is_byok:
        return Hold(org=amount_nanos + plugin_nanos, key=amount_nanos + plugin_nanos)
    fee = fee_nanos(amount_nanos, limits.byok_fee_percent) + plugin_nanos
    return Hold(org=fee, key=fee + amount_nanos if include_byok_in_limit else fee)


def admit_verdict(
    *,
    balance: int,
    reserved: int,
    purchased: int,
    is_free: bool,
    hold: Hold,
    free_used_minute: int,
    free_used_day: int,
    limit_nanos: int | None,
    key_used: int,
    key_reserved: int,
    limits: Limits,
) -> Verdict:
    """lua/admit.lua's decision, in its order. `key_used` already includes BYOK usage when the key counts it."""
    if balance < 0:
        return Verdict("negative", balance)
    if is_free:
        if free_used_minute >= limits.free_rpm:
            return Verdict("rpm", limits.free_rpm)
        rpd, high = limits.free_daily_cap(purchased)
        if free_used_day >= rpd:
            return Verdict("rpd", rpd, int(high))
        return OK
    if balance - reserved < hold.org:
        return Verdict("credits", balance - reserved)
    if limit_nanos is not None and key_used + key_reserved + hold.key > limit_nanos:
        return Verdict("key_limit", limit_nanos - key_used - key_reserved)
    return OK


@dataclass(frozen=True, slots=True)
class Charge:
    """What finish() charges for one event. A `counted` (BYOK) event bumps the organization's monthly
    BYOK counter and costs `within` while the count is at most `quota`, else `beyond`; an uncounted
    event costs `beyond`. `byok_usage` goes to the key's BYOK usage windows."""

    counted: bool
    quota: int
    within: int
    beyond: int
    byok_usage: int

    def amount(self, count: int, held: int = -1) -> int:
        """`held` is the organization hold finish() released (-1: none was open, e.g. it expired).

        The charge never exceeds the hold: what the upstream consumed beyond it is the platform's
        loss (settlement posts list cost - charge to the loss account), never the client's."""
        if self.counted:
            return self.within if count <= self.quota else self.beyond
        return min(self.beyond, held) if held >= 0 else self.beyond


def charge_for(event: UsageEvent, limits: Limits) -> Charge:
    """List price for platform inference; BYOK is free for the first requests of the month, then the fee.
    Plugin costs (web search) are paid to the platform in full on top, inside the BYOK allowance too."""
    list_cost, plugin = event.list_cost_nanos, max(event.plugin_cost_nanos, 0)
    if event.is_byok:
        fee = fee_nanos(list_cost, limits.byok_fee_percent) if list_cost > 0 else 0
        return Charge(
            counted=True, quota=limits.byok_free_per_month, within=plugin, beyond=fee + plugin, byok_usage=list_cost
        )
    return Charge(counted=False, quota=0, within=0, beyond=max(list_cost, 0) + plugin, byok_usage=0)


USAGE_NAMES = ("total", "daily", "weekly", "monthly")


def key_usage_dict(rows: list[tuple[int, int]]) -> dict[str, int]:
    """(charged, BYOK list cost) per window, in `Periods.windows` order, as {"total", ..., "byok_total", ...}."""
    out = {name: u for name, (u, _) in zip(USAGE_NAMES, rows, strict=True)}
    out.update({f"byok_{name}": b for name, (_, b) in zip(USAGE_NAMES, rows, strict=True)})
    return out


def _usd(nanos: int) -> str:
    return f"${nanos_to_usd_number(max(nanos, 0)):.6f}".rstrip("0").rstrip(".")


def refusal(verdict: Verdict, hold_nanos: int, at: float, limits: Limits) -> Admission:
    """Turn a refusing verdict into the API's error (status, message, metadata, headers)."""
    name, value = verdict.name, verdict.value
    if name == "negative":
        return Admission(
            ok=False,
            status=402,
            code="negative_balance",
            message="Your account balance is negative. Add credits to continue, free models included.",
            metadata={"limit_source": "openrouter_credits"},
        )
    if name == "credits":
        return Admission(
            ok=False,
            status=402,
            code="insufficient_credits",
            message=f"Insufficient credits: this request can cost up to {_usd(hold_nanos)} but only {_usd(value)} "
            "is available. Add credits or lower max_tokens.",
            metadata={"limit_source": "openrouter_credits"},
        )
    if name == "key_limit":
        return Admission(
            ok=False,
            status=402,
            code="key_limit_exceeded",
            message=f"Key limit exceeded: this request can cost up to {_usd(hold_nanos)} but the key has "
            f"{_usd(value)} left. Raise the key's limit or wait for it to reset.",
            metadata={"limit_source": "openrouter_key_limit"},
        )
    p = Periods.at(at)
    if name == "rpm":
        # The sliding window frees a slot when its oldest request turns a minute old (verdict.extra).
        code, reset_ms = "free-models-per-min", verdict.extra or int(at * 1000) + 60_000
        message = "Rate limit exceeded: free-models-per-min."
    else:
        high = verdict.extra == 1
        code, reset_ms = ("free-models-per-day-high-balance" if high else "free-models-per-day"), p.day_reset_ms
        message = f"Rate limit exceeded: {code}."
        if not high:
            message += (
                f" Add {limits.free_credits_threshold_usd} credits to unlock "
                f"{limits.free_rpd_with_credits} free model requests per day"
            )
    headers = {"X-RateLimit-Limit": str(value), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset_ms)}
    retry = max(1, -(-(reset_ms - int(at * 1000)) // 1000))
    return Admission(
        ok=False,
        status=429,
        code=code,
        message=message,
        retry_after=retry,
        headers=headers,
        metadata={"headers": headers},
    )
