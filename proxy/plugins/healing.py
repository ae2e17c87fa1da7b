"""The `response-healing` plugin: repair malformed JSON answers to JSON-mode requests (docs/routing.md).

Applies to non-streaming requests with `response_format` `json_object` or `json_schema` and
`plugins: [{"id": "response-healing"}]`. An answer that already parses (and fits the schema) is
left byte for byte. Otherwise, in order: the first markdown fence's body; the text from the first
`{` / `[` (leading prose dropped) to the end of that value (trailing prose dropped); then, outside
strings, trailing commas removed, unquoted keys quoted, Python's True / False / None as JSON, an
unterminated string closed, a dangling `:` given `null`, and missing closing brackets added. The
result must parse and, for `json_schema`, fit the schema (proxy/plugins/schema.py).

Never applied to an answer cut by max_tokens (`finish_reason: "length"`): closing its brackets would
pass off a truncated answer as a complete one. When repair fails, the answer is returned as the
model wrote it with the choice's `error` saying why (the tokens were produced and billed; a non-200
would hide them). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from proxy.plugins.schema import schema_errors

PLUGIN_ID = "response-healing"
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


class HealingError(ValueError):
    """The answer could not be turned into JSON (that fits the schema)."""


@dataclass(frozen=True, slots=True)
class Healing:
    """What the request asks for: heal, and against which schema (None for json_object)."""

    schema: Mapping[str, Any] | None


def healing_for(body: Mapping[str, Any], plugins: object) -> Healing | None:
    """The healing a request asks for, or None (no plugin, disabled, or not a JSON-mode request)."""
    wanted = any(
        isinstance(p, Mapping) and p.get("id") == PLUGIN_ID and p.get("enabled", True) is not False
        for p in (plugins if isinstance(plugins, list | tuple) else ())
    )
    fmt = body.get("response_format")
    if not wanted or not isinstance(fmt, Mapping) or fmt.get("type") not in ("json_object", "json_schema"):
        return None
    spec = fmt.get("json_schema") if fmt.get("type") == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    return Healing(schema if isinstance(schema, Mapping) else None)


def heal_json(text: str, schema: Mapping[str, Any] | None = None) -> str:
    """`text` as valid JSON (itself when it already is); raises HealingError with the reason."""
    if _fits(text, schema):
        return text
    candidate = _extract(text)
    repaired = _repair(candidate)
    try:
        value = orjson.loads(repaired)
    except orjson.JSONDecodeError as exc:
        raise HealingError(f"the answer is not JSON and could not be repaired ({exc})") from None
    errors = schema_errors(value, schema) if schema is not None else []
    if errors:
        raise HealingError(f"the repaired JSON does not match the schema: {errors[0]}")
    return orjson.dumps(value).decode()


def heal_choices(choices: list[dict[str, Any]], healing: Healing) -> None:
    """Repair each choice's message content in place; a failure becomes the choice's `error`."""
    for choice in choices:
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or choice.get("finish_reason") == "length":
            continue
        try:
            message["content"] = heal_json(content, healing.schema)  # type: ignore[index]
        except HealingError as exc:
            choice["error"] = {
                "code": 422,
                "message": f"Response healing failed: {exc}",
                "metadata": {"error_type": "response_healing_failed"},
            }


def _fits(text: str, schema: Mapping[str, Any] | None) -> bool:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return schema is None or not schema_errors(value, schema)


def _extract(text: str) -> str:
    """The fenced block if there is one, from its first bracket on; else from the first bracket."""
    fenced = _FENCE.search(text)
    if fenced and re.search(r"[{\[]", fenced.group(1)):
        text = fenced.group(1)
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise HealingError("the answer contains no JSON object or array")
    return text[min(starts) :]


def _last_significant(out: list[str]) -> str:
    for piece in reversed(out):
        stripped = piece.strip()
        if stripped:
            return stripped[-1]
    return ""


def _drop_trailing_comma(out: list[str]) -> None:
    for index in range(len(out) - 1, -1, -1):
        if out[index].strip():
            if out[index].strip() == ",":
                del out[index]
            return


def _repair(text: str) -> str:
    """One pass over the text, outside strings: the syntax fixes, stopping after the top-level value."""
    out: list[str] = []
    closers: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(text):
        ch = text[index]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            index += 1
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            _drop_trailing_comma(out)
            if closers and closers[-1] == ch:
                closers.pop()
            out.append(ch)
            index += 1
            if not closers:
                break  # the top-level value ended: what follows is prose
            continue
        elif _IDENT.match(ch):
            word = _IDENT.match(text, index)
            assert word is not None
            token = word.group(0)
            after = text[word.end() :].lstrip()
            if closers and closers[-1] == "}" and _last_significant(out) in "{," and after.startswith(":"):
                out.append(f'"{token}"')  # an unquoted key
            else:
                out.append(_PY_LITERALS.get(token, token))
            index = word.end()
            continue
        out.append(ch)
        index += 1
    if in_string:
        if escaped:
            out.pop()  # a dangling backslash would escape the closing quote
        out.append('"')
    if _last_significant(out) == ":":
        out.append("null")
    while closers:
        _drop_trailing_comma(out)
        out.append(closers.pop())
    return "".join(out)
