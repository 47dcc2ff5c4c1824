"""BFCL v4 single-turn categories, read from the data files shipped in the `bfcl-eval` package.

For evaluation only (training on BFCL would leak the benchmark). The files are read directly:
`BFCL_v4_<category>.json` (JSON Lines: `id`, `question` = a list of turns, each a list of
messages, `function` = the tool docs) joined by `id` with `possible_answer/BFCL_v4_<category>.json`
(`ground_truth` = a list of `{name: {param: [accepted values]}}`). The irrelevance categories
have no answer file. The package is located with `importlib.util.find_spec`, which does not
import it (importing bfcl_eval creates folders under BFCL_PROJECT_ROOT).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal, get_args

from megatron_toolrl.data.convert import ground_truth_from_bfcl
from megatron_toolrl.data.records import BadJson, FieldError, LoadReport, OnError, iter_records, json_type, require
from megatron_toolrl.data.schema import normalize_tools
from megatron_toolrl.data.task import Category, GroundTruthCall, ToolTask
from megatron_toolrl.errors import DataError

BfclCategory = Literal[
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "irrelevance",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "live_irrelevance",
]
BFCL_CATEGORIES: tuple[str, ...] = get_args(BfclCategory)

BFCL_TO_CATEGORY: dict[str, Category] = {
    "simple_python": "single",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
    "live_simple": "single",
    "live_multiple": "multiple",
    "live_parallel": "parallel",
    "live_parallel_multiple": "parallel_multiple",
    "live_irrelevance": "irrelevance",
}
"""Our category of each BFCL file (BFCL's `simple_*` is our `single`)."""


def bfcl_data_dir() -> Path:
    """The `data/` directory of the installed bfcl-eval package."""
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bfcl-eval package is not installed (pip install bfcl-eval)", path="bfcl_eval")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_bfcl(
    categories: tuple[BfclCategory, ...] | list[BfclCategory] = (
        "simple_python",
        "multiple",
        "parallel",
        "parallel_multiple",
        "irrelevance",
    ),
    data_dir: str | Path | None = None,
    on_error: OnError = "raise",
) -> tuple[list[ToolTask], LoadReport]:
    """Tasks of the given BFCL categories (default: the five non-live AST ones)."""
    tasks: list[ToolTask] = []
    report: LoadReport | None = None
    for category in categories:
        more, part = load_bfcl_category(category, data_dir, on_error)
        tasks.extend(more)
        report = part if report is None else report.merge(part)
    return tasks, report if report is not None else LoadReport(source="bfcl_v4")


def load_bfcl_category(
    category: BfclCategory, data_dir: str | Path | None = None, on_error: OnError = "raise"
) -> tuple[list[ToolTask], LoadReport]:
    """Tasks of one BFCL category. Task ids are BFCL's ids; `meta["bfcl_category"]` names the file."""
    if category not in BFCL_TO_CATEGORY:
        raise ValueError(f"unknown BFCL category {category!r}; expected one of {BFCL_CATEGORIES}")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    root = Path(data_dir) if data_dir is not None else bfcl_data_dir()
    ours = BFCL_TO_CATEGORY[category]
    question_path = root / f"BFCL_v4_{category}.json"
    answer_path = root / "possible_answer" / f"BFCL_v4_{category}.json"
    source = f"bfcl_v4:{category}"
    report = LoadReport(source=source, paths=[str(question_path)])
    answers: dict[str, tuple[int, Any]] = {}
    if ours != "irrelevance":
        report.paths.append(str(answer_path))
        answers = _read_answers(answer_path, report, on_error)
    used: set[str] = set()
    tasks: list[ToolTask] = []
    for line, record in iter_records(question_path):
        report.read += 1
        try:
            if isinstance(record, BadJson):
                raise FieldError("", record.reason)
            task = _to_task(record, category, ours, answers, source)
        except FieldError as exc:
            if on_error == "raise":
                raise DataError(exc.reason, path=question_path, line=line, field=exc.field or None) from None
            report.skip(str(question_path), line, exc.field or None, exc.reason)
            continue
        if task.id in used:
            exc = FieldError("id", f"duplicate id {task.id!r}")
            if on_error == "raise":
                raise DataError(exc.reason, path=question_path, line=line, field="id")
            report.skip(str(question_path), line, "id", exc.reason)
            continue
        used.add(task.id)
        tasks.append(task)
        report.loaded += 1
    for task_id, (line, _) in answers.items():
        if task_id not in used:
            reason = f"answer for {task_id!r}, which has no question"
            if on_error == "raise":
                raise DataError(reason, path=answer_path, line=line, field="id")
            report.skip(str(answer_path), line, "id", reason)
    report.log()
    return tasks, report


def _read_answers(path: Path, report: LoadReport, on_error: OnError) -> dict[str, tuple[int, Any]]:
    answers: dict[str, tuple[int, Any]] = {}
    for line, record in iter_records(path):
        try:
            if isinstance(record, BadJson):
                raise FieldError("", record.reason)
            if not isinstance(record, dict):
                raise FieldError("", f"a record must be a JSON object, got {json_type(record)}")
            task_id = require(record, "id", str)
            if task_id in answers:
                raise FieldError("id", f"duplicate id {task_id!r}")
            answers[task_id] = (line, require(record, "ground_truth", list))
        except FieldError as exc:
            if on_error == "raise":
                raise DataError(exc.reason, path=path, line=line, field=exc.field or None) from None
            report.skip(str(path), line, exc.field or None, exc.reason)
    return answers


def _to_task(
    record: Any, bfcl_category: str, ours: Category, answers: dict[str, tuple[int, Any]], source: str
) -> ToolTask:
    if not isinstance(record, dict):
        raise FieldError("", f"a record must be a JSON object, got {json_type(record)}")
    task_id = require(record, "id", str)
    question = require(record, "question", list)
    messages: list[dict[str, Any]] = []
    for t, turn in enumerate(question):
        if not isinstance(turn, list):
            raise FieldError(f"question[{t}]", f"expected a list of messages, got {json_type(turn)}")
        for m, message in enumerate(turn):
            where = f"question[{t}][{m}]"
            if not isinstance(message, dict):
                raise FieldError(where, f"expected an object, got {json_type(message)}")
            role = require(message, "role", str, f"{where}.")
            content = require(message, "content", str, f"{where}.")
            messages.append({"role": role, "content": content})
    if not messages or messages[-1]["role"] != "user":
        raise FieldError("question", "the last message must be a user turn")
    tools = normalize_tools(require(record, "function", list), "function")
    ground_truth: list[GroundTruthCall] = []
    if ours != "irrelevance":
        if task_id not in answers:
            raise FieldError("id", f"no possible answer for {task_id!r}")
        ground_truth = ground_truth_from_bfcl(answers[task_id][1], {t["name"] for t in tools})
    try:
        return ToolTask(
            id=task_id,
            messages=messages,
            tools=tools,
            ground_truth=ground_truth,
            category=ours,
            source=source,
            meta={"bfcl_category": bfcl_category},
        )
    except ValueError as exc:
        raise FieldError("ground_truth", str(exc)) from None
