"""Tool docs as the model sees them.

Tasks store BFCL function docs (types dict/float/tuple/any). Models and chat templates expect
OpenAI-style JSON schema (object/number/array), so the prompt gets converted copies; the task
keeps the BFCL form for the checker.
"""

from __future__ import annotations

import json
from typing import Any

_TO_JSON_SCHEMA = {"dict": "object", "float": "number", "tuple": "array"}
"""BFCL type -> JSON-schema type (BFCL's own handlers map the same way for FC models)."""


def json_schema(schema: Any) -> Any:
    """A copy of a BFCL parameter schema with JSON-schema type names; `any` drops the type."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            if value == "any":
                continue
            out[key] = _TO_JSON_SCHEMA.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = json_schema(value)
        else:
            out[key] = value
    return out


def to_openai_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """`{"type": "function", "function": {name, description, parameters}}`, what HF chat templates take."""
    function = {
        "name": tool["name"],
        "description": tool.get("description", ""),
        "parameters": json_schema(tool["parameters"]),
    }
    return {"type": "function", "function": function}


def tools_block(tools: list[dict[str, Any]]) -> str:
    """Hermes-style listing: one JSON function doc per line inside `<tools></tools>`."""
    lines = [json.dumps(to_openai_tool(t)["function"], ensure_ascii=False) for t in tools]
    return "<tools>\n" + "\n".join(lines) + "\n</tools>"


def tool_signature(tool: dict[str, Any]) -> str:
    """A one-line summary, `name(city: string, unit?: string) - description`, for demonstration tools."""
    params = tool["parameters"]
    required = set(params.get("required", []))
    parts = []
    for name, schema in params.get("properties", {}).items():
        kind = json_schema(schema).get("type", "any") if isinstance(schema, dict) else "any"
        mark = "" if name in required else "?"
        enum = schema.get("enum") if isinstance(schema, dict) else None
        suffix = f" [{'|'.join(str(v) for v in enum)}]" if enum else ""
        parts.append(f"{name}{mark}: {kind}{suffix}")
    description = tool.get("description", "")
    return f"{tool['name']}({', '.join(parts)})" + (f" - {description}" if description else "")
