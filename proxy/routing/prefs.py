"""The `provider` object of a request (contract 2.3), parsed strictly into `ProviderPrefs`.

OpenRouter rejects unknown keys in this object with a 400, and clients rely on that to catch typos
(`Require_Parameters`), so parsing is strict: unknown keys and wrong types are a `RoutingError(400)`.
Money limits become integer nano-dollars here, once, so routing compares integers only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from common.money import NANOS_PER_USD

SORT_KEYS = ("price", "throughput", "latency", "exacto")
PARTITIONS = ("model", "none")
QUANTIZATIONS = frozenset(
    {"int4", "int8", "fp4", "mxfp4", "nvfp4", "fp6", "fp8", "mxfp8", "fp16", "bf16", "fp32", "unknown"}
)
PERCENTILES = ("p50", "p75", "p90", "p99")

_KNOWN_KEYS = (
    "order",
    "allow_fallbacks",
    "require_parameters",
    "data_collection",
    "zdr",
    "enforce_distillable_text",
    "only",
    "ignore",
    "quantizations",
    "sort",
    "preferred_min_throughput",
    "preferred_max_latency",
    "max_price",
)
_MAX_PRICE_KEYS = ("prompt", "completion", "request", "image", "audio")


class RoutingError(Exception):
    """A request that cannot be routed: 400 bad input, 404 no endpoint matches, 503 none available now.

    `metadata` goes into the error envelope as is; routing never raises anything else for bad input.
    """

    def __init__(self, status: int, message: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = metadata


@dataclass(frozen=True, slots=True)
class MaxPrice:
    """Hard price ceilings in nano-dollars: per 1M tokens for prompt/completion, per unit otherwise."""

    prompt: int | None = None
    completion: int | None = None
    request: int | None = None
    image: int | None = None
    audio: int | None = None  # accepted for compatibility; the catalog has no audio price to compare

    def is_empty(self) -> bool:
        return all(v is None for v in (self.prompt, self.completion, self.request, self.image))


@dataclass(frozen=True, slots=True)
class SortSpec:
    by: str  # one of SORT_KEYS
    partition: str = "model"  # "model": fallback models stay behind the primary; "none": pooled


@dataclass(frozen=True, slots=True)
class ProviderPrefs:
    order: tuple[str, ...] | None = None
    allow_fallbacks: bool = True
    require_parameters: bool = False
    data_collection: str = "allow"
    zdr: bool | None = None
    enforce_distillable_text: bool | None = None
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    quantizations: tuple[str, ...] | None = None
    sort: SortSpec | None = None
    # Soft preferences (contract 2.3): percentile -> tokens/s, and percentile -> seconds.
    preferred_min_throughput: Mapping[str, float] = field(default_factory=dict)
    preferred_max_latency: Mapping[str, float] = field(default_factory=dict)
    max_price: MaxPrice = field(default_factory=MaxPrice)


DEFAULT_PREFS = ProviderPrefs()


def _bad(message: str) -> RoutingError:
    return RoutingError(400, message, {"error_type": "invalid_request"})


def _bool(raw: Mapping[str, object], key: str) -> bool | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _bad(f"provider.{key}: Expected boolean, received {_type_name(value)}")
    return value


def _str_list(raw: Mapping[str, object], key: str) -> tuple[str, ...] | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"provider.{key}: Expected array of strings, received {_type_name(value)}")
    return tuple(v.strip() for v in value if v.strip())


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _decimal(value: object, where: str) -> Decimal:
    """A non-negative number given as a JSON number or a decimal string (the spec says string, docs numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(f"{where}: Expected number or numeric string, received {_type_name(value)}")
    try:
        # str() of a float is its shortest repr, so 0.1 stays 0.1 rather than 0.1000000000000000055...
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(f"{where}: '{value}' is not a number") from None
    if not number.is_finite() or number < 0:
        raise _bad(f"{where}: must be a non-negative number")
    return number


def usd_limit_to_nanos(value: object, where: str) -> int:
    """A USD ceiling in nano-dollars, floored: every catalog price is whole nanos, so `price <= floor(limit)`
    is exactly `price <= limit`."""
    nanos = (_decimal(value, where) * NANOS_PER_USD).to_integral_value(rounding=ROUND_FLOOR)
    return int(nanos)


def _max_price(value: object) -> MaxPrice:
    if value is None:
        return MaxPrice()
    if not isinstance(value, dict):
        raise _bad(f"provider.max_price: Expected object, received {_type_name(value)}")
    _reject_unknown(value, _MAX_PRICE_KEYS)
    # Prompt/completion ceilings are USD per million tokens and catalog prices are nanos per million
    # tokens, so both convert with the same factor as per-request and per-image ceilings.
    parsed = {
        key: (None if value.get(key) is None else usd_limit_to_nanos(value[key], f"provider.max_price.{key}"))
        for key in _MAX_PRICE_KEYS
    }
    return MaxPrice(**parsed)


def _sort(value: object) -> SortSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in SORT_KEYS:
            raise _bad(f"provider.sort: Invalid enum value. Expected {' | '.join(SORT_KEYS)}, received '{value}'")
        return SortSpec(by=value)
    if isinstance(value, dict):
        _reject_unknown(value, ("by", "partition"))
        by = value.get("by")
        partition = value.get("partition") or "model"
        if not isinstance(by, str) or by not in SORT_KEYS:
            raise _bad(f"provider.sort.by: Invalid enum value. Expected {' | '.join(SORT_KEYS)}")
        if partition not in PARTITIONS:
            raise _bad("provider.sort.partition: Invalid enum value. Expected model | none")
        return SortSpec(by=by, partition=str(partition))
    raise _bad(f"provider.sort: Expected string or object, received {_type_name(value)}")


def _percentiles(value: object, key: str) -> Mapping[str, float]:
    """`preferred_*` take a number (meaning p50) or {p50?, p75?, p90?, p99?}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        _reject_unknown(value, PERCENTILES)
        return {p: float(_decimal(v, f"provider.{key}.{p}")) for p, v in value.items() if v is not None}
    return {"p50": float(_decimal(value, f"provider.{key}"))}


def _reject_unknown(raw: Mapping[str, object], known: tuple[str, ...]) -> None:
    unknown = [k for k in raw if k not in known]
    if unknown:
        listed = ", ".join(f"'{k}'" for k in unknown)
        raise _bad(f"Unrecognized key(s) in object: {listed}")


def parse_provider_prefs(raw: object) -> ProviderPrefs:
    """Parse the request's `provider` object; `None` means defaults. Raises `RoutingError(400)`."""
    if raw is None:
        return DEFAULT_PREFS
    if not isinstance(raw, dict):
        raise _bad(f"provider: Expected object, received {_type_name(raw)}")
    _reject_unknown(raw, _KNOWN_KEYS)
    data_collection = raw.get("data_collection") or "allow"
    if data_collection not in ("allow", "deny"):
        raise _bad("provider.data_collection: Invalid enum value. Expected 'allow' | 'deny'")
    quantizations = _str_list(raw, "quantizations")
    if quantizations is not None:
        unknown_q = [q for q in quantizations if q.lower() not in QUANTIZATIONS]
        if unknown_q:
            raise _bad(f"provider.quantizations: Invalid enum value '{unknown_q[0]}'")
        quantizations = tuple(q.lower() for q in quantizations)
    allow_fallbacks = _bool(raw, "allow_fallbacks")
    prefs = ProviderPrefs(
        order=_str_list(raw, "order"),
        allow_fallbacks=True if allow_fallbacks is None else allow_fallbacks,
        require_parameters=bool(_bool(raw, "require_parameters")),
        data_collection=str(data_collection),
        zdr=_bool(raw, "zdr"),
        enforce_distillable_text=_bool(raw, "enforce_distillable_text"),
        only=_str_list(raw, "only"),
        ignore=_str_list(raw, "ignore"),
        quantizations=quantizations,
        sort=_sort(raw.get("sort")),
        preferred_min_throughput=_percentiles(raw.get("preferred_min_throughput"), "preferred_min_throughput"),
        preferred_max_latency=_percentiles(raw.get("preferred_max_latency"), "preferred_max_latency"),
        max_price=_max_price(raw.get("max_price")),
    )
    _reject_contradictions(prefs)
    return prefs


def _reject_contradictions(prefs: ProviderPrefs) -> None:
    """Preferences that can never match anything are the caller's mistake (400), not a missing endpoint."""
    ignored = {entry.lower() for entry in prefs.ignore or ()}
    if prefs.only and all(entry.lower() in ignored for entry in prefs.only):
        both = ", ".join(f"'{e}'" for e in prefs.only)
        raise _bad(f"provider.only and provider.ignore leave no provider to route to: {both} is in both lists")
    if prefs.order and not prefs.allow_fallbacks and all(entry.lower() in ignored for entry in prefs.order):
        raise _bad("provider.order with allow_fallbacks: false names only providers that provider.ignore excludes")


def prefs_with_route(prefs: ProviderPrefs, route: object) -> ProviderPrefs:
    """Apply the legacy top-level `route` field: an alias for `sort.partition` (contract 2.1).

    `"fallback"` keeps fallback models behind the primary (our default anyway); `"sort"` pools all
    endpoints of all listed models, which only means something when a sort is also given.
    """
    if route is None:
        return prefs
    if route not in ("fallback", "sort"):
        raise _bad("route: Invalid enum value. Expected 'fallback' | 'sort'")
    partition = "model" if route == "fallback" else "none"
    if prefs.sort is None:
        return prefs  # nothing to partition without a sort: load balancing keeps models in order
    return replace(prefs, sort=SortSpec(by=prefs.sort.by, partition=partition))
