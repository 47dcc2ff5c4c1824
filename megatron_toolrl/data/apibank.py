"""API-Bank (Li et al. 2023) loader: level-1/2/3 dialogues with API calls.

API-Bank ships each dialogue as a list of turns (`{"role": "User"|"AI", "text"}` and
`{"role": "API", "api_name", "param_dict", "result": {"output", "exception"}}`) and describes
its APIs in Python classes (`description`, `input_parameters`, `output_parameters`). This loader
reads one self-contained record per dialogue, the turns plus the descriptions of the APIs they
may use, one record per JSON Lines line or per element of a JSON list:

    {"id": "AddAlarm-level-1-1", "level": 1,
     "apis": [{"name": "AddAlarm", "description": "The API for setting an alarm.",
               "input_parameters": {"token": {"type": "str", "description": "User's token."},
                                    "time": {"type": "str", "description": "HH:MM:SS"}},
               "output_parameters": {"status": {"type": "str", "description": "success or failed"}}}],
     "dialogue": [{"role": "User", "text": "Set an alarm for 6:30 tomorrow."},
                  {"role": "API", "api_name": "AddAlarm", "param_dict": {"token": "a9s8", "time": "06:30:00"},
                   "result": {"output": "success", "exception": null}},
                  {"role": "AI", "text": "Your alarm is set."}]}

Every API turn becomes one task: the messages are the dialogue before it (earlier API turns
appear as an assistant call plus a tool message with their output), the ground truth is
`api_name(**param_dict)`, and `meta` keeps the level and the expected output (for API-Bank's
execution-based scoring). Input parameters are required unless their type says `optional`
or their spec sets `"required": false`; `level` must be 1, 2 or 3 (level 2/3 dialogues include
their ToolSearcher calls like any other API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from megatron_toolrl.data.convert import check_calls_against_tools, ground_truth_from_calls, infer_category
from megatron_toolrl.data.records import FieldError, LoadReport, OnError, json_type, load_records, require
from megatron_toolrl.data.schema import normalize_tools, python_params_schema
from megatron_toolrl.data.task import ToolCall, ToolTask


def load_apibank(
    path: str | Path, on_error: OnError = "raise", source: str = "api_bank"
) -> tuple[list[ToolTask], LoadReport]:
    """Tasks of an API-Bank file in the layout above: one per API call turn."""
    return load_records(path, source, lambda record, index: apibank_record_to_tasks(record, index, source), on_error)


def apibank_record_to_tasks(record: dict[str, Any], index: int, source: str = "api_bank") -> list[ToolTask]:
    level = require(record, "level", int)
    if level not in (1, 2, 3):
        raise FieldError("level", f"expected 1, 2 or 3, got {level}")
    record_id = record.get("id", index)
    if not isinstance(record_id, (str, int)) or isinstance(record_id, bool):
        raise FieldError("id", f"expected a string or integer, got {json_type(record_id)}")
    apis = require(record, "apis", list)
    tools = normalize_tools([_api_to_tool(api, f"apis[{i}]") for i, api in enumerate(apis)], "apis")
    dialogue = require(record, "dialogue", list)
    history: list[dict[str, Any]] = []
    tasks: list[ToolTask] = []
    for i, turn in enumerate(dialogue):
        where = f"dialogue[{i}]"
        if not isinstance(turn, dict):
            raise FieldError(where, f"expected an object, got {json_type(turn)}")
        role = require(turn, "role", str, f"{where}.")
        if role in ("User", "AI"):
            history.append(
                {"role": "user" if role == "User" else "assistant", "content": require(turn, "text", str, f"{where}.")}
            )
            continue
        if role != "API":
            raise FieldError(f"{where}.role", f"expected 'User', 'AI' or 'API', got {role!r}")
        call = ToolCall(require(turn, "api_name", str, f"{where}."), require(turn, "param_dict", dict, f"{where}."))
        check_calls_against_tools([call], tools, f"{where}.call")
        result = turn.get("result", {})
        if not isinstance(result, dict):
            raise FieldError(f"{where}.result", f"expected an object, got {json_type(result)}")
        if not history:
            raise FieldError(where, "an API call needs a dialogue turn before it")
        tasks.append(
            ToolTask(
                id=f"{source}-l{level}-{record_id}-{i}",
                messages=[dict(m) for m in history],
                tools=tools,
                ground_truth=ground_truth_from_calls([call]),
                category=infer_category([call.name], len(tools)),
                domain=f"api_bank_level{level}",
                source=source,
                meta={
                    "level": level,
                    "expected_output": result.get("output"),
                    "expected_exception": result.get("exception"),
                },
            )
        )
        history.append({"role": "assistant", "content": "", "tool_calls": [call.to_json()]})
        history.append({"role": "tool", "content": json.dumps(result.get("output"), ensure_ascii=False, default=str)})
    if not tasks:
        raise FieldError("dialogue", "no API turn")
    return tasks


def _api_to_tool(api: Any, field: str) -> dict[str, Any]:
    if not isinstance(api, dict):
        raise FieldError(field, f"expected an object, got {json_type(api)}")
    name = require(api, "name", str, f"{field}.")
    inputs = api.get("input_parameters", {})
    if not isinstance(inputs, dict):
        raise FieldError(f"{field}.input_parameters", f"expected an object, got {json_type(inputs)}")
    tool: dict[str, Any] = {
        "name": name,
        "description": api.get("description", ""),
        "parameters": python_params_schema(inputs, f"{field}.input_parameters"),
    }
    if "output_parameters" in api:
        tool["output_parameters"] = api["output_parameters"]
    return tool
