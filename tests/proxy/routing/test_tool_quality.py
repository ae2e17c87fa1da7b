"""Tool-call quality per endpoint: the verdict (proxy/plugins/tool_calls.py) and how routing uses it
(`:exacto`, `sort: "exacto"`, requests with tools). Through the gateway: tests/proxy/gateway/test_tool_quality.py."""

from __future__ import annotations

import random
from typing import Any

import pytest

from proxy.health import EndpointHealth, HealthView
from proxy.plugins.schema import schema_errors
from proxy.plugins.tool_calls import ToolCallCollector, tool_call_problem, tool_calls_ok
from proxy.routing import RoutePlan, RouteRequest, parse_provider_prefs, route
from tests.proxy.routing.support import USD_PER_MTOK, cand, catalog, model

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}


def call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}


SCHEMA = "arguments fail the schema: "


@pytest.mark.parametrize(
    ("tool_call", "problem"),
    [
        (call("get_weather", '{"location": "Paris", "unit": "celsius"}'), None),
        (call("get_weather", '{"location": "Paris",}'), "arguments are not valid JSON"),
        (call("get_weather", '["Paris"]'), "arguments are not a JSON object"),
        (call("get_wether", '{"location": "Paris"}'), "unknown tool 'get_wether'"),
        (call("get_weather", '{"location": 75001}'), SCHEMA + "$.location: expected string"),
        (call("get_weather", '{"unit": "celsius"}'), SCHEMA + "$: missing 'location'"),
        (
            call("get_weather", '{"location": "x", "when": 1}'),
            SCHEMA + "$: unexpected property 'when'",
        ),
        (
            call("get_weather", '{"location": "x", "unit": "kelvin"}'),
            SCHEMA + "$.unit: not one of the allowed values",
        ),
    ],
)
def test_it_judges_one_tool_call(tool_call: dict[str, Any], problem: str | None) -> None:
    assert tool_call_problem(tool_call, {"get_weather": WEATHER["function"]["parameters"]}) == problem


def test_a_response_is_bad_when_any_call_is_bad_and_unjudged_without_calls() -> None:
    good = call("get_weather", '{"location": "Paris"}')
    assert tool_calls_ok([WEATHER], [good, good]) is True
    assert tool_calls_ok([WEATHER], [good, call("get_weather", "{")]) is False
    assert tool_calls_ok([WEATHER], []) is None
    assert tool_calls_ok(None, [good]) is False  # a call to a tool nobody offered


def test_the_schema_subset_follows_refs_and_combinators() -> None:
    schema = {
        "$defs": {"point": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 0}}}},
        "type": "object",
        "properties": {
            "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "maxItems": 2},
            "label": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
        },
    }
    assert schema_errors({"points": [{"x": 1}, {"x": 2.0}], "label": None}, schema) == []
    assert schema_errors({"points": [{"x": -1}]}, schema) == ["$.points[0].x: below the minimum 0"]
    assert schema_errors({"label": "long"}, schema) == ["$.label: matches none of anyOf"]
    assert schema_errors({"points": [{}, {}, {}]}, schema) == ["$.points: more than 2 items"]
    assert schema_errors("anything", {"format": "email", "pattern": "^x"}) == []  # unknown keywords pass


def test_it_reassembles_streamed_tool_calls() -> None:
    collector = ToolCallCollector()
    fragments = ['{"loca', 'tion": "Pa', 'ris"}']
    collector.feed([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "get_weather"}}]}}])
    for part in fragments:
        collector.feed([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}}])
    [assembled] = collector.calls()
    assert assembled["function"] == {"name": "get_weather", "arguments": '{"location": "Paris"}'}
    assert tool_calls_ok([WEATHER], collector.calls()) is True


# --- routing ---------------------------------------------------------------------------------------

CHEAP_BROKEN = cand("cheap", prompt=USD_PER_MTOK // 10, completion=USD_PER_MTOK // 10, endpoint_id=301)
DEAR_GOOD = cand("dear", prompt=3 * USD_PER_MTOK, endpoint_id=302)
UNMEASURED = cand("fresh", prompt=2 * USD_PER_MTOK, endpoint_id=303)
CAT = catalog(model("acme/model", CHEAP_BROKEN, DEAR_GOOD, UNMEASURED))
HEALTH = HealthView(
    {
        301: EndpointHealth(tool_error_rate=0.5, throughput_p50=500),
        302: EndpointHealth(tool_error_rate=0.0, throughput_p50=50),
    }
)


def plan(model_id: str = "acme/model", provider: object = None, **kw: Any) -> RoutePlan:
    req = RouteRequest(models=(model_id,), prefs=parse_provider_prefs(provider), **kw)
    return route(req, CAT, HEALTH, random.Random(3))


def tags(p: RoutePlan) -> list[str]:
    return [a.candidate.tag for a in p.attempts]


def test_exacto_orders_by_measured_tool_call_quality_unmeasured_in_between() -> None:
    assert tags(plan("acme/model:exacto")) == ["dear", "fresh", "cheap"]
    assert tags(plan(provider={"sort": "exacto"})) == ["dear", "fresh", "cheap"]


def test_requests_with_tools_try_endpoints_that_break_tool_calls_last() -> None:
    assert tags(plan(provider={"sort": "price"}, params=frozenset({"tools"}))) == ["fresh", "dear", "cheap"]
    assert tags(plan(provider={"sort": "price"}))[0] == "cheap"  # no tools: price decides
    for seed in range(10):  # load balancing too: the broken endpoint is never ahead
        req = RouteRequest(models=("acme/model",), params=frozenset({"tools"}))
        assert [a.candidate.tag for a in route(req, CAT, HEALTH, random.Random(seed)).attempts][-1] == "cheap"
