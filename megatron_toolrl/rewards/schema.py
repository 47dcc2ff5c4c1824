"""Is a call a valid call of one of the given tools? (no ground truth involved)

Used by the self-exemplar bonus: an example the model writes in its reasoning earns the bonus only
if it is a call the tool list allows. Valid means: the tool exists, every required parameter is
given, no parameter outside the schema, and every value has the schema's type (and is one of
its `enum` values when there is one). Types are BFCL's (string, integer, float, boolean, array,
tuple, dict, any) and their JSON-schema spellings (number, object); an int is a valid float, as
in BFCL's Python checker, and a bool is never a number.
"""

from __future__ import annotations

from typing import Any, Sequence

from megatron_toolrl.data.task import ToolCall

_MAX_DEPTH = 16
"""Deepest schema/value nesting inspected; deeper values are rejected (bounded work)."""


def call_schema_error(tools: Sequence[dict[str, Any]], call: ToolCall) -> str | None:
    """None when `call` is a valid call of one of `tools`, else the reason it is not."""
    tool = next((t for t in tools if t.get("name") == call.name), None)
    if tool is None:
        return f"no tool named {call.name!r}"
    params = tool.get("parameters") or {}
    properties = params.get("properties") or {}
    for name in params.get("required") or []:
        if name not in call.arguments:
            return f"{call.name}: missing required parameter {name!r}"
    for name, value in call.arguments.items():
        if name not in properties:
            return f"{call.name}: unknown parameter {name!r}"
        error = _value_error(value, properties[name], 0)
        if error is not None:
            return f"{call.name}.{name}: {error}"
    return None


def _value_error(value: Any, schema: Any, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return "nested too deeply"
    if not isinstance(schema, dict):
        return None  # a parameter without a schema accepts anything
    if "enum" in schema and isinstance(schema["enum"], list) and value not in schema["enum"]:
        return f"{value!r:.60} is not one of the enum values"
    kind = schema.get("type")
    if kind is None or kind == "any":
        return None
    if isinstance(kind, list):  # JSON schema allows a list of types
        errors = [_value_error(value, {**schema, "type": k}, depth) for k in kind]
        return None if any(e is None for e in errors) else f"{value!r:.60} has none of the types {kind}"
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind in ("float", "number"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind in ("array", "tuple"):
        if not isinstance(value, (list, tuple)):
            return f"expected {kind}, got {type(value).__name__}"
        for item in value:
            error = _value_error(item, schema.get("items"), depth + 1)
            if error is not None:
                return f"item: {error}"
        return None
    elif kind in ("dict", "object"):
        if not isinstance(value, dict):
            return f"expected {kind}, got {type(value).__name__}"
        inner = schema.get("properties")
        if isinstance(inner, dict):
            for key in schema.get("required") or []:
                if key not in value:
                    return f"missing key {key!r}"
            for key, item in value.items():
                if key in inner:
                    error = _value_error(item, inner[key], depth + 1)
                    if error is not None:
                        return f"{key}: {error}"
        return None
    else:
        return None  # a type name we do not know (e.g. a Java type) is not held against the call
    return None if ok else f"expected {kind}, got {type(value).__name__}"
