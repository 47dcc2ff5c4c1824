"""Validation and normalisation of tool schemas (function docs) from any dataset.

Every loader stores tools in BFCL's function-doc layout,
`{"name", "description", "parameters": {"type": "dict", "properties": {...}, "required": [...]}}`,
with BFCL's type names (string, integer, float, boolean, array, tuple, dict, any), because that
is what BFCL's checker and ours read. JSON-schema spellings are accepted and renamed
(`number` -> `float`, `object` -> `dict`), as are the Python spellings seen in xLAM/API-Bank
(`str`, `int`, `bool`, `list`). Nothing else is changed: descriptions, defaults, enums and any
extra keys are kept as they came.
"""

from __future__ import annotations

import re
from typing import Any

from megatron_toolrl.data.records import FieldError, json_type

TYPES: tuple[str, ...] = ("string", "integer", "float", "boolean", "array", "tuple", "dict", "any")
"""BFCL's parameter types: the vocabulary stored in every ToolTask."""

TYPE_ALIASES: dict[str, str] = {
    "number": "float",
    "object": "dict",
    "double": "float",
    "str": "string",
    "int": "integer",
    "bool": "boolean",
    "list": "array",
}
"""Other spellings of the same types (JSON schema, Python), renamed on load."""

MAX_SCHEMA_DEPTH = 16
"""Deepest nesting of `properties`/`items` accepted in a tool schema (real tools use < 5)."""


def canonical_type(name: Any, field: str) -> str:
    """The BFCL type for a schema `type` value, or FieldError if it is not a known type."""
    if not isinstance(name, str):
        raise FieldError(field, f"expected a type name (string), got {json_type(name)}")
    if name in TYPES:
        return name
    if name in TYPE_ALIASES:
        return TYPE_ALIASES[name]
    raise FieldError(field, f"unknown type {name!r} (known: {', '.join(TYPES + tuple(TYPE_ALIASES))})")


def normalize_tool(tool: Any, field: str) -> dict[str, Any]:
    """A validated copy of one function doc with canonical type names.

    Checks: the tool is an object with a non-empty string `name`; `description` (if present) is a
    string; `parameters` is an object of type dict/object whose `properties` is an object of
    parameter schemas, each with a known `type`; `required` is a list of property names. A
    missing `properties`/`required` means none (tools without arguments). Raises FieldError
    naming the bad field (e.g. `tools[2].parameters.properties.city.type`).
    """
    if not isinstance(tool, dict):
        raise FieldError(field, f"expected an object, got {json_type(tool)}")
    name = tool.get("name")
    if not isinstance(name, str) or not name.strip():
        raise FieldError(f"{field}.name", "expected a non-empty string" if "name" in tool else "missing")
    if "description" in tool and not isinstance(tool["description"], str):
        raise FieldError(f"{field}.description", f"expected a string, got {json_type(tool['description'])}")
    if "parameters" not in tool:
        raise FieldError(f"{field}.parameters", "missing")
    out = dict(tool)
    out["parameters"] = _normalize_object_schema(tool["parameters"], f"{field}.parameters", depth=0, top=True)
    return out


def _normalize_object_schema(schema: Any, field: str, depth: int, top: bool) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise FieldError(field, f"expected an object, got {json_type(schema)}")
    if depth > MAX_SCHEMA_DEPTH:
        raise FieldError(field, f"nested deeper than {MAX_SCHEMA_DEPTH} levels")
    out = dict(schema)
    kind = canonical_type(schema["type"], f"{field}.type") if "type" in schema else "dict"
    if top and kind != "dict":
        raise FieldError(
            f"{field}.type", f"the parameters of a tool must be of type dict/object, got {schema['type']!r}"
        )
    out["type"] = kind
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise FieldError(f"{field}.properties", f"expected an object, got {json_type(properties)}")
    out["properties"] = {
        key: _normalize_value_schema(value, f"{field}.properties.{key}", depth + 1) for key, value in properties.items()
    }
    required = schema.get("required", [])
    if required is None:  # ToolACE writes null for "no required parameters"
        required = []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise FieldError(f"{field}.required", f"expected a list of parameter names, got {json_type(required)}")
    unknown = [r for r in required if r not in out["properties"]]
    if unknown:
        raise FieldError(f"{field}.required", f"names {unknown} that are not in properties")
    out["required"] = list(required)
    return out


def _normalize_value_schema(schema: Any, field: str, depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise FieldError(field, f"expected an object, got {json_type(schema)}")
    if depth > MAX_SCHEMA_DEPTH:
        raise FieldError(field, f"nested deeper than {MAX_SCHEMA_DEPTH} levels")
    if "type" not in schema:
        raise FieldError(f"{field}.type", "missing")
    out = dict(schema)
    out["type"] = canonical_type(schema["type"], f"{field}.type")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise FieldError(f"{field}.enum", f"expected a list, got {json_type(schema['enum'])}")
    if "description" in schema and not isinstance(schema["description"], str):
        raise FieldError(f"{field}.description", f"expected a string, got {json_type(schema['description'])}")
    if "items" in schema:
        items = schema["items"]
        if not isinstance(items, dict):
            raise FieldError(f"{field}.items", f"expected an object, got {json_type(items)}")
        # JSON schema allows items without a type (any item); keep that, check the rest.
        out["items"] = _normalize_value_schema(items, f"{field}.items", depth + 1) if "type" in items else dict(items)
    if out["type"] == "dict" and "properties" in schema:
        nested = _normalize_object_schema(schema, field, depth, top=False)
        out["properties"] = nested["properties"]
        if "required" in schema:
            out["required"] = nested["required"]
    return out


def normalize_tools(tools: Any, field: str = "tools") -> list[dict[str, Any]]:
    """Validate a tool list; names must be unique (the model could not tell two apart)."""
    if not isinstance(tools, list):
        raise FieldError(field, f"expected a list, got {json_type(tools)}")
    out = [normalize_tool(tool, f"{field}[{i}]") for i, tool in enumerate(tools)]
    seen: set[str] = set()
    for i, tool in enumerate(out):
        if tool["name"] in seen:
            raise FieldError(f"{field}[{i}].name", f"duplicate tool name {tool['name']!r}")
        seen.add(tool["name"])
    return out


_PY_TYPE = re.compile(
    r"^\s*(optional\s*\[\s*(?P<inner>.*)\]|(?P<plain>.*?))\s*(?P<opt>,\s*optional)?\s*$", re.IGNORECASE
)
_PY_BASES: dict[str, str] = {
    "str": "string",
    "string": "string",
    "int": "integer",
    "integer": "integer",
    "float": "float",
    "number": "float",
    "bool": "boolean",
    "boolean": "boolean",
    "list": "array",
    "array": "array",
    "set": "array",
    "tuple": "tuple",
    "dict": "dict",
    "object": "dict",
    "any": "any",
}


def python_type_schema(type_text: Any, field: str) -> tuple[dict[str, Any], bool]:
    """Read an xLAM/API-Bank type string (`str`, `int, optional`, `List[str]`, `Optional[Dict]`).

    Returns the JSON-schema fragment (`{"type": ..., "items"?: ...}`) and whether the string marks
    the parameter optional. Unknown types raise FieldError.
    """
    if not isinstance(type_text, str):
        raise FieldError(field, f"expected a type string, got {json_type(type_text)}")
    match = _PY_TYPE.match(type_text)
    assert match is not None  # the pattern matches any string
    optional = bool(match.group("opt")) or match.group("inner") is not None
    core = (match.group("inner") or match.group("plain") or "").strip()
    head, _, rest = core.partition("[")
    base = _PY_BASES.get(head.strip().lower())
    if base is None:
        raise FieldError(field, f"unknown type {type_text!r}")
    schema: dict[str, Any] = {"type": base}
    if base == "array" and rest:
        inner = rest.rsplit("]", 1)[0].strip()
        inner_base = _PY_BASES.get(inner.partition("[")[0].strip().lower())
        if inner_base is not None:
            schema["items"] = {"type": inner_base}
    return schema, optional


def python_params_schema(params: dict[str, Any], field: str) -> dict[str, Any]:
    """xLAM/API-Bank parameters, `{name: {"type": "str, optional", "description": ..., ...}}`,
    as a JSON-schema object. A parameter is required unless its type string says optional, it
    has a `default`, or it carries `"required": false` (API-Bank's marker, which is dropped).
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in params.items():
        where = f"{field}.{name}"
        if not isinstance(spec, dict):
            raise FieldError(where, f"expected an object, got {json_type(spec)}")
        if "type" not in spec:
            raise FieldError(f"{where}.type", "missing")
        schema, optional = python_type_schema(spec["type"], f"{where}.type")
        marked = spec.get("required", True)
        if not isinstance(marked, bool):
            raise FieldError(f"{where}.required", f"expected a boolean, got {json_type(marked)}")
        properties[name] = {**schema, **{k: v for k, v in spec.items() if k not in ("type", "required")}}
        if marked and not optional and "default" not in spec:
            required.append(name)
    return {"type": "dict", "properties": properties, "required": required}
