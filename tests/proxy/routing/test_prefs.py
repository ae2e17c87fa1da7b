from __future__ import annotations

import pytest

from proxy.routing.prefs import (
    DEFAULT_PREFS,
    MaxPrice,
    RoutingError,
    SortSpec,
    parse_provider_prefs,
    prefs_with_route,
)


def test_it_returns_defaults_for_a_missing_provider_object() -> None:
    assert parse_provider_prefs(None) == DEFAULT_PREFS
    assert DEFAULT_PREFS.allow_fallbacks is True
    assert DEFAULT_PREFS.data_collection == "allow"


def test_it_parses_every_documented_field() -> None:
    prefs = parse_provider_prefs(
        {
            "order": ["anthropic", "deepinfra/turbo"],
            "allow_fallbacks": False,
            "require_parameters": True,
            "data_collection": "deny",
            "zdr": True,
            "enforce_distillable_text": False,
            "only": ["anthropic", "deepinfra"],
            "ignore": ["openai"],
            "quantizations": ["FP8", "bf16"],
            "sort": {"by": "throughput", "partition": "none"},
            "preferred_min_throughput": 50,
            "preferred_max_latency": {"p50": 1.5, "p90": 3},
            "max_price": {"prompt": 1, "completion": "2.5", "request": 0.001, "image": "0.01", "audio": 3},
        }
    )
    assert prefs.order == ("anthropic", "deepinfra/turbo")
    assert prefs.allow_fallbacks is False
    assert prefs.require_parameters is True
    assert prefs.data_collection == "deny"
    assert prefs.zdr is True
    assert prefs.only == ("anthropic", "deepinfra")
    assert prefs.ignore == ("openai",)
    assert prefs.quantizations == ("fp8", "bf16")
    assert prefs.sort == SortSpec(by="throughput", partition="none")
    assert prefs.preferred_min_throughput == {"p50": 50.0}
    assert prefs.preferred_max_latency == {"p50": 1.5, "p90": 3.0}
    # $1 per million tokens is 1e9 nanos per million tokens; $0.001 per request is 1e6 nanos.
    assert prefs.max_price == MaxPrice(
        prompt=1_000_000_000, completion=2_500_000_000, request=1_000_000, image=10_000_000, audio=3_000_000_000
    )


def test_it_converts_float_prices_exactly() -> None:
    prefs = parse_provider_prefs({"max_price": {"prompt": 0.1, "completion": 0.3}})
    assert prefs.max_price.prompt == 100_000_000
    assert prefs.max_price.completion == 300_000_000


def test_it_floors_sub_nano_limits() -> None:
    # No price is a fraction of a nano-dollar, so flooring the limit changes no comparison.
    prefs = parse_provider_prefs({"max_price": {"request": "0.0000000015"}})
    assert prefs.max_price.request == 1


def test_it_accepts_a_string_sort() -> None:
    assert parse_provider_prefs({"sort": "price"}).sort == SortSpec(by="price", partition="model")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"Require_Parameters": True}, "Unrecognized key(s) in object: 'Require_Parameters'"),
        ({"order": ["a"], "x": 1, "y": 2}, "Unrecognized key(s) in object: 'x', 'y'"),
        ({"max_price": {"tokens": 1}}, "Unrecognized key(s) in object: 'tokens'"),
        ({"sort": {"by": "price", "direction": "asc"}}, "Unrecognized key(s) in object: 'direction'"),
        ({"allow_fallbacks": "false"}, "provider.allow_fallbacks: Expected boolean, received string"),
        ({"order": "openai"}, "provider.order: Expected array of strings"),
        ({"only": [1, 2]}, "provider.only: Expected array of strings"),
        ({"data_collection": "never"}, "provider.data_collection"),
        ({"sort": "cheapest"}, "provider.sort: Invalid enum value"),
        ({"sort": {"by": "price", "partition": "all"}}, "provider.sort.partition"),
        ({"quantizations": ["int3"]}, "provider.quantizations: Invalid enum value 'int3'"),
        ({"max_price": {"prompt": -1}}, "provider.max_price.prompt: must be a non-negative number"),
        ({"max_price": {"prompt": "cheap"}}, "'cheap' is not a number"),
        ({"max_price": {"prompt": True}}, "Expected number or numeric string, received boolean"),
        ({"max_price": {"prompt": "NaN"}}, "must be a non-negative number"),
        ({"max_price": 5}, "provider.max_price: Expected object"),
        ({"preferred_min_throughput": {"p42": 1}}, "Unrecognized key(s) in object: 'p42'"),
    ],
)
def test_it_rejects_bad_input_with_a_400_that_says_why(raw: object, fragment: str) -> None:
    with pytest.raises(RoutingError) as info:
        parse_provider_prefs(raw)
    assert info.value.status == 400
    assert fragment in info.value.message
    assert info.value.metadata == {"error_type": "invalid_request"}


def test_it_rejects_a_provider_that_is_not_an_object() -> None:
    with pytest.raises(RoutingError) as info:
        parse_provider_prefs(["openai"])
    assert info.value.status == 400
    assert "Expected object, received array" in info.value.message


def test_it_rejects_only_and_ignore_naming_the_same_providers() -> None:
    with pytest.raises(RoutingError) as info:
        parse_provider_prefs({"only": ["OpenAI"], "ignore": ["openai", "azure"]})
    assert info.value.status == 400
    assert "provider.only and provider.ignore" in info.value.message
    assert "'OpenAI'" in info.value.message


def test_it_accepts_a_partial_overlap_of_only_and_ignore() -> None:
    prefs = parse_provider_prefs({"only": ["openai", "azure"], "ignore": ["openai"]})
    assert prefs.only == ("openai", "azure")


def test_it_rejects_an_exclusive_order_that_ignore_empties() -> None:
    with pytest.raises(RoutingError) as info:
        parse_provider_prefs({"order": ["openai"], "allow_fallbacks": False, "ignore": ["openai"]})
    assert info.value.status == 400
    assert "allow_fallbacks: false" in info.value.message


def test_it_maps_the_legacy_route_field_to_the_sort_partition() -> None:
    sorted_prefs = parse_provider_prefs({"sort": "price"})
    assert prefs_with_route(sorted_prefs, "sort").sort == SortSpec(by="price", partition="none")
    assert prefs_with_route(sorted_prefs, "fallback").sort == SortSpec(by="price", partition="model")
    assert prefs_with_route(DEFAULT_PREFS, "fallback") == DEFAULT_PREFS
    assert prefs_with_route(DEFAULT_PREFS, None) == DEFAULT_PREFS
    with pytest.raises(RoutingError) as info:
        prefs_with_route(DEFAULT_PREFS, "random")
    assert info.value.status == 400
