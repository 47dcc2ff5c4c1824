"""The AST checker: are the decoded calls a correct answer? BFCL's semantics, our implementation.

Per call (BFCL's `simple_function_checker`): the function name must equal the doc's name; every
`required` parameter must be present; every given argument must be in the doc and in the ground
truth, with an accepted value (`values.check_argument`); every ground-truth parameter not given
must be optional (`""` among its accepted values).

Per category (`Category` -> BFCL's test category):
- single (BFCL `simple`): exactly one call, checked against the one ground-truth call. The doc is
  the one the ground truth names (BFCL takes the first doc; in its data that is the only one).
- multiple: as many calls as ground-truth calls (one), the first checked against it; the doc is
  the one named by the ground truth, so calling another of the offered tools is wrong.
- parallel, parallel_multiple: as many calls as ground-truth calls, matched in any order the way
  BFCL does it: each ground-truth call, in order, takes the first not-yet-taken call it accepts.
  (Greedy, like BFCL: it can miss a matching that a full bipartite search would find.)
- irrelevance: correct iff there is no call. From text (`check`), an answer that does not parse
  counts as no call, as in BFCL's relevance runner.

The tools and the ground truth are trusted data; an inconsistency (a ground-truth function missing
from the tools, an unknown schema type) raises DataError. The calls are untrusted: any literal
values (what the parsers produce: str, int, float, bool, None, lists, tuples, dicts) give a
CheckResult, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from megatron_toolrl.data.task import CATEGORIES, Category, GroundTruthCall, ToolCall
from megatron_toolrl.errors import DataError
from megatron_toolrl.toolcall.parse import parse_calls
from megatron_toolrl.toolcall.types import CheckResult, OutputFormat, ParseLimits
from megatron_toolrl.toolcall.values import Mismatch, ParamType, check_argument

BFCL_CATEGORY: dict[str, str] = {
    "single": "simple",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
}
"""Our `Category` -> the test-category name BFCL's checker dispatches on."""

_DEFAULT_LIMITS = ParseLimits()


def check(
    tools: Sequence[dict[str, Any]],
    text: str,
    ground_truth: Sequence[GroundTruthCall],
    category: Category,
    fmt: OutputFormat,
    limits: ParseLimits = _DEFAULT_LIMITS,
    *,
    underscore_to_dot: bool = False,
) -> CheckResult:
    """Parse `text` (written in `fmt`) and check its calls; the parse is kept in `result.parse`."""
    _check_category(category)
    parsed = parse_calls(text, fmt, limits)
    if category == "irrelevance":
        if parsed.calls:
            return CheckResult(False, f"{len(parsed.calls)} call(s) where none was expected",
                               "irrelevance_error:decoder_success", parsed.calls, parsed)
        return CheckResult(True, calls=[], parse=parsed)
    if not parsed.ok:
        return CheckResult(False, f"cannot decode the answer: {parsed.error}", "ast_decoder:decoder_failed", [], parsed)
    result = check_calls(tools, parsed.calls, ground_truth, category, underscore_to_dot=underscore_to_dot)
    result.parse = parsed
    return result


def check_calls(
    tools: Sequence[dict[str, Any]],
    calls: Sequence[ToolCall],
    ground_truth: Sequence[GroundTruthCall],
    category: Category,
    *,
    underscore_to_dot: bool = False,
) -> CheckResult:
    """Check already-decoded calls against the ground truth of one task.

    `underscore_to_dot`: BFCL's ModelConfig flag of that name, for models whose APIs forbid "." in
    function names: the expected name `math.factorial` is then matched as `math_factorial`.
    Off by default, as for the prompting models BFCL scores from python-call text.
    """
    _check_category(category)
    calls = list(calls)
    if category == "irrelevance":
        if calls:
            return CheckResult(False, f"{len(calls)} call(s) where none was expected",
                               "irrelevance_error:decoder_success", calls)
        return CheckResult(True, calls=calls)
    if not ground_truth:
        raise DataError(f"category {category!r} needs at least one ground-truth call", field="ground_truth")
    docs = _docs_by_name(tools)
    if category in ("single", "multiple"):
        if len(ground_truth) != 1:
            raise DataError(f"category {category!r} has exactly one ground-truth call, got {len(ground_truth)}",
                            field="ground_truth")
        if len(calls) != 1:
            prefix = "simple_function_checker" if category == "single" else "multiple_function_checker"
            return CheckResult(False, f"expected 1 call, got {len(calls)}", f"{prefix}:wrong_count", calls)
        mismatch = _check_call(_doc_for(docs, ground_truth[0]), calls[0], ground_truth[0], underscore_to_dot)
        if mismatch is not None:
            return CheckResult(False, mismatch.message, mismatch.error_type, calls)
        return CheckResult(True, calls=calls)
    return _check_parallel(docs, calls, ground_truth, underscore_to_dot)


def _check_category(category: str) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"category {category!r} is not one of {CATEGORIES}")


def _check_parallel(docs: dict[str, dict[str, Any]], calls: list[ToolCall], ground_truth: Sequence[GroundTruthCall],
                    underscore_to_dot: bool) -> CheckResult:
    if len(calls) != len(ground_truth):
        return CheckResult(False, f"expected {len(ground_truth)} calls, got {len(calls)}",
                           "parallel_function_checker_no_order:wrong_count", calls)
    taken: set[int] = set()
    for gt_index, gt in enumerate(ground_truth):
        doc = _doc_for(docs, gt)
        last: Mismatch | None = None
        for index, call in enumerate(calls):
            if index in taken:
                continue
            last = _check_call(doc, call, gt, underscore_to_dot)
            if last is None:
                taken.add(index)
                break
        if last is not None:
            message = f"no call matches expected call #{gt_index} ({gt.name}); last mismatch: {last.message}"
            return CheckResult(False, message, "parallel_function_checker_no_order:cannot_find_match", calls)
    return CheckResult(True, calls=calls)


def _docs_by_name(tools: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise DataError("a function doc needs a string 'name'", field=f"tools[{i}]")
        docs.setdefault(tool["name"], tool)  # BFCL's find_description takes the first of a name
    return docs


def _doc_for(docs: dict[str, dict[str, Any]], gt: GroundTruthCall) -> dict[str, Any]:
    if gt.name not in docs:
        raise DataError(f"ground-truth function {gt.name!r} is not among the tools {sorted(docs)}",
                        field="ground_truth")
    return docs[gt.name]


def _check_call(doc: dict[str, Any], call: ToolCall, gt: GroundTruthCall, underscore_to_dot: bool) -> Mismatch | None:
    name = doc["name"]
    if underscore_to_dot:
        name = name.replace(".", "_")
    if call.name != name:
        return Mismatch("simple_function_checker:wrong_func_name", f"function {call.name!r:.80} is not {name!r}")
    params = doc.get("parameters") or {}
    properties = params.get("properties") or {}
    arguments = call.arguments
    for required in params.get("required") or ():
        if required not in arguments:
            return Mismatch("simple_function_checker:missing_required",
                            f"{name}: missing required parameter {required!r}")
    accepted = gt.arguments
    for param, value in arguments.items():
        if param not in properties or param not in accepted:
            return Mismatch("simple_function_checker:unexpected_param", f"{name}: unexpected parameter {param!r:.80}")
        ptype = ParamType.from_schema(name, param, properties[param])
        mismatch = check_argument(param, value, accepted[param], ptype)
        if mismatch is not None:
            return Mismatch(mismatch.error_type, f"{name}: {mismatch.message}")
    for param, options in accepted.items():
        if param not in arguments and "" not in options:
            return Mismatch("simple_function_checker:missing_optional", f"{name}: parameter {param!r} is not optional")
    return None
