"""xLAM / APIGen (Salesforce/xlam-function-calling-60k) and Hammer loaders.

Accepted layout, one record per JSON Lines line or per element of a JSON list:

    {"id": 7, "query": "...",
     "tools": "[{\"name\": \"f\", \"description\": \"...\",
                 \"parameters\": {\"city\": {\"type\": \"str\", \"description\": \"...\", \"default\": \"Paris\"}}}]",
     "answers": "[{\"name\": \"f\", \"arguments\": {\"city\": \"Rome\"}}]"}

`tools` and `answers` are JSON strings in the released files (already-decoded lists are accepted
too). A tool's `parameters` maps each parameter to `{type, description, default?}` with Python
type strings (`str`, `int, optional`, `List[str]`); they become JSON-schema `properties`, and a
parameter is `required` unless its type says `optional` or it has a `default`. An empty answer
list is an irrelevance task (Hammer's irrelevance set). Hammer (MadeAgents) uses the same layout
with masked function and parameter names; it only gets its own `source` tag.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from megatron_toolrl.data.convert import (
    calls_from_json,
    check_calls_against_tools,
    ground_truth_from_calls,
    infer_category,
)
from megatron_toolrl.data.records import FieldError, LoadReport, OnError, json_type, load_records, require
from megatron_toolrl.data.schema import normalize_tools, python_params_schema
from megatron_toolrl.data.task import ToolTask


def load_xlam(path: str | Path, on_error: OnError = "raise", source: str = "xlam") -> tuple[list[ToolTask], LoadReport]:
    """Tasks of an xLAM-layout file; `source` tags them (and prefixes their ids)."""
    return load_records(path, source, lambda record, index: [xlam_record_to_task(record, index, source)], on_error)


def load_hammer(path: str | Path, on_error: OnError = "raise") -> tuple[list[ToolTask], LoadReport]:
    """Hammer's data: the xLAM layout with masked names, tagged `hammer`."""
    return load_xlam(path, on_error=on_error, source="hammer")


def xlam_record_to_task(record: dict[str, Any], index: int, source: str = "xlam") -> ToolTask:
    query = require(record, "query", str)
    raw_tools = _decoded(record, "tools")
    raw_answers = _decoded(record, "answers")
    if not isinstance(raw_tools, list):
        raise FieldError("tools", f"expected a list of tools, got {json_type(raw_tools)}")
    tools = normalize_tools([_xlam_tool(t, f"tools[{i}]") for i, t in enumerate(raw_tools)])
    calls = calls_from_json(raw_answers, "answers")
    check_calls_against_tools(calls, tools, "answers")
    record_id = record.get("id", index)
    if not isinstance(record_id, (str, int)) or isinstance(record_id, bool):
        raise FieldError("id", f"expected a string or integer, got {json_type(record_id)}")
    return ToolTask(
        id=f"{source}-{record_id}",
        messages=[{"role": "user", "content": query}],
        tools=tools,
        ground_truth=ground_truth_from_calls(calls),
        category=infer_category([c.name for c in calls], len(tools)),
        source=source,
    )


def _decoded(record: dict[str, Any], key: str) -> Any:
    value = require(record, key, (str, list))
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise FieldError(key, f"not a valid JSON string: {exc.msg} (column {exc.colno})") from None
    return value


def _xlam_tool(tool: Any, field: str) -> dict[str, Any]:
    """xLAM's `{param: {type, description, default?}}` parameters -> a JSON-schema object."""
    if not isinstance(tool, dict):
        raise FieldError(field, f"expected an object, got {json_type(tool)}")
    params = tool.get("parameters", {})
    if not isinstance(params, dict):
        raise FieldError(f"{field}.parameters", f"expected an object, got {json_type(params)}")
    if params.get("type") in ("object", "dict") and isinstance(params.get("properties"), dict):
        return tool  # already JSON schema (some xLAM-layout exports convert it)
    out = {k: v for k, v in tool.items() if k != "parameters"}
    out["parameters"] = python_params_schema(params, f"{field}.parameters")
    return out
