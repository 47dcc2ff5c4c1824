"""Shared steps of the dataset converters: answers -> ground truth, category inference, checks.

Datasets other than BFCL give one correct answer per prompt. In BFCL's possible-answer form every
argument becomes a one-element list of accepted values; dict values become per-key lists
(BFCL's nested form), so that `GroundTruthCall.canonical_call()` gives the original call back.
"""

from __future__ import annotations

from typing import Any, Sequence

from megatron_toolrl.data.records import FieldError, json_type
from megatron_toolrl.data.task import Category, GroundTruthCall, ToolCall


def possible_value(value: Any) -> Any:
    """A single value in BFCL's nested possible-answer form (dicts hold per-key accepted lists)."""
    if isinstance(value, dict):
        return {k: [possible_value(v)] for k, v in value.items()}
    if isinstance(value, list):
        return [possible_value(v) for v in value]
    return value


def ground_truth_from_calls(calls: Sequence[ToolCall]) -> list[GroundTruthCall]:
    """One GroundTruthCall per call, each argument accepting exactly its given value."""
    return [GroundTruthCall(c.name, {k: [possible_value(v)] for k, v in c.arguments.items()}) for c in calls]


def infer_category(call_names: Sequence[str], n_tools: int) -> Category:
    """BFCL category of an answer, by BFCL's own convention (it reproduces the category of every
    task of the five non-live BFCL files, and of all but two live_parallel tasks): no call ->
    irrelevance; one call -> single when one
    tool is offered, else multiple; several calls -> parallel when one tool is offered (all
    calls of it), else parallel_multiple (even if they all call the same one of several tools)."""
    if not call_names:
        return "irrelevance"
    if len(call_names) == 1:
        return "single" if n_tools == 1 else "multiple"
    return "parallel" if n_tools == 1 else "parallel_multiple"


def check_calls_against_tools(calls: Sequence[ToolCall], tools: Sequence[dict[str, Any]], field: str) -> None:
    """Every call names a given tool, passes only its parameters and all its required ones.

    Values are not type-checked here: datasets write e.g. "5" for integers often enough that a
    type rule would drop good rows; the reward's checker judges values.
    """
    by_name = {t["name"]: t for t in tools}
    for i, call in enumerate(calls):
        tool = by_name.get(call.name)
        if tool is None:
            raise FieldError(
                f"{field}[{i}].name", f"calls {call.name!r}, which is not in the tool list {sorted(by_name)}"
            )
        properties = tool["parameters"]["properties"]
        for arg in call.arguments:
            if arg not in properties:
                raise FieldError(f"{field}[{i}].arguments.{arg}", f"{call.name!r} has no parameter {arg!r}")
        for arg in tool["parameters"]["required"]:
            if arg not in call.arguments:
                raise FieldError(f"{field}[{i}].arguments", f"required parameter {arg!r} of {call.name!r} is missing")


def calls_from_json(items: Any, field: str, args_key: str = "arguments") -> list[ToolCall]:
    """`[{"name": ..., "arguments": {...}}, ...]` -> ToolCalls (xLAM answers, canonical JSONL history)."""
    if not isinstance(items, list):
        raise FieldError(field, f"expected a list of calls, got {type(items).__name__}")
    calls = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FieldError(f"{field}[{i}]", "expected an object with 'name' and 'arguments'")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise FieldError(f"{field}[{i}].name", "expected a non-empty string")
        args = item.get(args_key, {})
        if not isinstance(args, dict):
            raise FieldError(f"{field}[{i}].{args_key}", "expected an object")
        calls.append(ToolCall(name, args))
    return calls


def ground_truth_from_bfcl(entries: Sequence[Any], tool_names: set[str]) -> list[GroundTruthCall]:
    """BFCL-style possible answers (`[{name: {param: [accepted, ...]}}]`) checked against the tools."""
    ground_truth = []
    for i, entry in enumerate(entries):
        try:
            gt = GroundTruthCall.from_bfcl(entry)
        except ValueError as exc:
            raise FieldError(f"ground_truth[{i}]", str(exc)) from None
        if gt.name not in tool_names:
            raise FieldError(f"ground_truth[{i}]", f"names {gt.name!r}, which is not among the tools")
        for param, accepted in gt.arguments.items():
            if not isinstance(accepted, list):
                raise FieldError(
                    f"ground_truth[{i}].{gt.name}.{param}",
                    f"expected a list of accepted values, got {json_type(accepted)}",
                )
        ground_truth.append(gt)
    return ground_truth
