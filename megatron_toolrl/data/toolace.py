"""ToolACE (Team-ACE/ToolACE) loader.

Accepted layout, one record per JSON Lines line or per element of a JSON list:

    {"system": "...Here is a list of functions in JSON format that you can invoke:\n[{...}, ...]. ...",
     "conversations": [{"from": "user", "value": "..."},
                       {"from": "assistant", "value": "[Get Weather(city=\"Oslo\")]"},
                       {"from": "tool", "value": "[{\"name\": \"Get Weather\", \"results\": {...}}]"},
                       {"from": "assistant", "value": "It is 4 degrees in Oslo."}]}

The tool list is the first JSON list in `system` after the phrase "list of functions" (or, when
the phrase is absent, the first JSON list of objects with a `name`). Each assistant turn that
directly answers a user or tool turn becomes one task whose messages are the dialogue before it:
a call list (`[f(a=1), ...]`, read by `pycall`) gives the ground truth; a plain-text reply right
after a user turn is a "no call" answer (clarifying question, refusal) and gives an irrelevance
task. Text replies after tool results summarise the results and are not tasks. Earlier call
turns stay in the history as assistant messages with `tool_calls`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from megatron_toolrl.data.convert import check_calls_against_tools, ground_truth_from_calls, infer_category
from megatron_toolrl.data.pycall import CallSyntaxError, looks_like_call_list, parse_call_list
from megatron_toolrl.data.records import FieldError, LoadReport, OnError, json_type, load_records, require
from megatron_toolrl.data.schema import normalize_tools
from megatron_toolrl.data.task import ToolTask

_LIST_PHRASE = re.compile(r"list of functions", re.IGNORECASE)
_MAX_LIST_STARTS = 64
"""Most `[` positions tried when the system prompt lacks the usual phrase (bounds the work)."""
_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "tool": "tool",
    "function": "tool",
}


def load_toolace(
    path: str | Path, on_error: OnError = "raise", source: str = "toolace"
) -> tuple[list[ToolTask], LoadReport]:
    """Tasks of a ToolACE file: one per assistant answer turn (see module docstring)."""
    return load_records(path, source, lambda record, index: toolace_record_to_tasks(record, index, source), on_error)


def toolace_record_to_tasks(record: dict[str, Any], index: int, source: str = "toolace") -> list[ToolTask]:
    system = require(record, "system", str)
    turns = require(record, "conversations", list)
    tools = normalize_tools(extract_tool_list(system), "system.tools")
    history: list[dict[str, Any]] = []
    tasks: list[ToolTask] = []
    previous_role = ""
    for i, turn in enumerate(turns):
        where = f"conversations[{i}]"
        if not isinstance(turn, dict):
            raise FieldError(where, f"expected an object, got {json_type(turn)}")
        speaker = require(turn, "from", str, f"{where}.")
        value = require(turn, "value", str, f"{where}.")
        role = _ROLES.get(speaker)
        if role is None:
            raise FieldError(f"{where}.from", f"unknown speaker {speaker!r} (expected one of {sorted(_ROLES)})")
        if role != "assistant":
            history.append({"role": role, "content": value})
            previous_role = role
            continue
        if looks_like_call_list(value):
            try:
                calls = parse_call_list(value)
            except CallSyntaxError as exc:
                raise FieldError(f"{where}.value", str(exc)) from None
            check_calls_against_tools(calls, tools, f"{where}.value.calls")
            tasks.append(_task(source, index, i, history, tools, calls))
            history.append({"role": "assistant", "content": "", "tool_calls": [c.to_json() for c in calls]})
        else:
            if previous_role == "user":
                tasks.append(_task(source, index, i, history, tools, []))
            history.append({"role": "assistant", "content": value})
        previous_role = "assistant"
    if not tasks:
        raise FieldError("conversations", "no assistant turn answers a user or tool turn")
    return tasks


def _task(
    source: str, index: int, turn: int, history: list[dict[str, Any]], tools: list[dict[str, Any]], calls: list
) -> ToolTask:
    if not history or history[-1]["role"] not in ("user", "tool"):
        raise FieldError(f"conversations[{turn}]", "an assistant answer must follow a user or tool turn")
    return ToolTask(
        id=f"{source}-{index}-{turn}",
        messages=[dict(m) for m in history],
        tools=tools,
        ground_truth=ground_truth_from_calls(calls),
        category=infer_category([c.name for c in calls], len(tools)),
        source=source,
        # ToolACE's system prompt is not kept as a message: it asks for python-call syntax, and
        # the prompt renderer writes its own instruction for the chosen output format.
        meta={"record": index, "turn": turn},
    )


def extract_tool_list(system: str) -> list[Any]:
    """The JSON tool list embedded in a ToolACE system prompt."""
    decoder = json.JSONDecoder()
    match = _LIST_PHRASE.search(system)
    if match and system.find("[", match.end()) >= 0:
        starts = [system.find("[", match.end())]
    else:
        starts = [i for i, c in enumerate(system) if c == "["][:_MAX_LIST_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(system, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, list) and value and all(isinstance(t, dict) and "name" in t for t in value):
            return value
    raise FieldError("system", "no JSON tool list (a list of objects with a 'name') found")
