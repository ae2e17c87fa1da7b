"""The JSON Schema subset that tool parameters and `response_format` schemas use in practice.

Checked: type (one or a list), enum, const, required, properties, additionalProperties,
items / prefixItems, min/maxItems, min/maxLength, minimum / maximum / exclusive bounds, anyOf /
oneOf / allOf / not, and local `$ref`s (`#/$defs/...`, `#/definitions/...`). Any other keyword
(format, pattern, ...) is ignored: a check that cannot be sure never calls a valid value invalid.
Pure, no dependencies (the runtime has no JSON Schema library).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
}
_MAX_DEPTH = 64  # a self-referencing schema stops here (and the value is accepted)


def schema_errors(value: Any, schema: Any, *, root: Any = None, path: str = "$", depth: int = 0) -> list[str]:
    """The ways `value` breaks `schema`, each as "<path>: <reason>"; empty when it conforms."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return []  # `true`, `{}` or an unreadable schema accept everything
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root)
        return schema_errors(value, target, root=root, path=path, depth=depth + 1) if target is not None else []
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        known = [k for k in kinds if k in _TYPES]
        if known and not any(_TYPES[k](value) for k in known):
            return [f"{path}: expected {' or '.join(known)}"]
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        errors.append(f"{path}: not one of the allowed values")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: must equal {schema['const']!r}")
    if isinstance(value, dict):
        errors += _object(value, schema, root, path, depth)
    elif isinstance(value, list):
        errors += _array(value, schema, root, path, depth)
    elif isinstance(value, str):
        if isinstance(schema.get("minLength"), int) and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']}")
        if isinstance(schema.get("maxLength"), int) and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']}")
    elif _TYPES["number"](value):
        errors += _number(value, schema, path)
    errors += _combinators(value, schema, root, path, depth)
    return errors


def _resolve(ref: str, root: Any) -> Any:
    if not ref.startswith("#"):
        return None  # remote references are not fetched
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _object(value: dict[str, Any], schema: Mapping[str, Any], root: Any, path: str, depth: int) -> list[str]:
    errors = [f"{path}: missing {name!r}" for name in schema.get("required") or () if name not in value]
    raw_props = schema.get("properties")
    props: Mapping[str, Any] = raw_props if isinstance(raw_props, Mapping) else {}
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            errors += schema_errors(item, props[name], root=root, path=f"{path}.{name}", depth=depth + 1)
        elif extra is False:
            errors.append(f"{path}: unexpected property {name!r}")
        elif isinstance(extra, Mapping):
            errors += schema_errors(item, extra, root=root, path=f"{path}.{name}", depth=depth + 1)
    return errors


def _array(value: list[Any], schema: Mapping[str, Any], root: Any, path: str, depth: int) -> list[str]:
    errors: list[str] = []
    if isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
        errors.append(f"{path}: fewer than {schema['minItems']} items")
    if isinstance(schema.get("maxItems"), int) and len(value) > schema["maxItems"]:
        errors.append(f"{path}: more than {schema['maxItems']} items")
    raw_prefix = schema.get("prefixItems")
    prefix: list[Any] = raw_prefix if isinstance(raw_prefix, list) else []
    items = schema.get("items")
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else items
        errors += schema_errors(item, sub, root=root, path=f"{path}[{index}]", depth=depth + 1)
    return errors


def _number(value: float, schema: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    for key, sign in (("minimum", -1), ("maximum", 1), ("exclusiveMinimum", -1), ("exclusiveMaximum", 1)):
        bound = schema.get(key)
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            continue
        exclusive = key.startswith("exclusive")
        beyond = (value - bound) * sign
        if beyond > 0 or (exclusive and beyond == 0):
            errors.append(f"{path}: {'above' if sign > 0 else 'below'} the {key} {bound}")
    return errors


def _combinators(value: Any, schema: Mapping[str, Any], root: Any, path: str, depth: int) -> list[str]:
    errors: list[str] = []

    def ok(sub: Any) -> bool:
        return not schema_errors(value, sub, root=root, path=path, depth=depth + 1)

    if isinstance(schema.get("allOf"), list):
        for sub in schema["allOf"]:
            errors += schema_errors(value, sub, root=root, path=path, depth=depth + 1)
    if isinstance(schema.get("anyOf"), list) and schema["anyOf"] and not any(ok(s) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of anyOf")
    if isinstance(schema.get("oneOf"), list) and schema["oneOf"] and sum(ok(s) for s in schema["oneOf"]) != 1:
        errors.append(f"{path}: must match exactly one of oneOf")
    if isinstance(schema.get("not"), Mapping) and ok(schema["not"]):
        errors.append(f"{path}: matches a schema it must not")
    return errors
