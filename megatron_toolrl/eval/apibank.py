"""API-Bank (levels 1-3) scoring of recorded model outputs: expected API call vs predicted calls.

API-Bank's call-level evaluation asks whether the model produced the expected API call: the right
API name with the right parameters. We follow ToolRL's scorer (`benchmarks/API-Bank/evaluate.py`,
the "soft match" it reports): an answer is correct when one of its calls has the expected name and
exactly the expected parameters (`match="any"`); `match="only"` is ToolRL's commented-out hard
match (exactly one call, and it is the expected one). Accuracy is reported per level and overall.

Records are read from JSON (a list) or JSONL. Each record needs `answer`: the expected call
`{"name", "parameters"}` (or `"arguments"`), or a list whose first element is that call (ToolRL's
processed files); `level` (1, 2 or 3) comes from the record or from a `level-N` in the file name;
`id` defaults to `level-N-<index>`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from megatron_toolrl.data.task import ToolCall, ToolTask
from megatron_toolrl.errors import DataError
from megatron_toolrl.eval.limits import EVAL_LIMITS
from megatron_toolrl.toolcall import parse_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits

MatchRule = Literal["any", "only"]


@dataclass(frozen=True)
class ApiBankRecord:
    id: str
    level: int
    expected: ToolCall


@dataclass
class LevelScore:
    level: int
    correct: int = 0
    name_correct: int = 0
    total: int = 0
    missing: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


def load_records(path: str | Path, level: int | None = None) -> list[ApiBankRecord]:
    """API-Bank records from a JSON list or JSONL file (see the module docstring)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[int, Any]]
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from exc
        rows = [(i + 1, row) for i, row in enumerate(data)]  # position in the list, 1-based
        where = "record"
    else:
        rows = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((line_no, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise DataError(f"not JSON: {exc.msg}", path=path, line=line_no) from exc
        where = "line"
    file_level = level
    if file_level is None:
        m = re.search(r"level[-_]?([123])", path.name, re.IGNORECASE)
        file_level = int(m.group(1)) if m else None
    records = []
    seen: set[str] = set()
    for index, (pos, row) in enumerate(rows):
        loc = {"path": path, "line": pos if where == "line" else None}
        prefix = "" if where == "line" else f"record {pos}: "
        if not isinstance(row, dict):
            raise DataError(prefix + "must be a JSON object", **loc)
        lvl = row.get("level", file_level)
        if lvl not in (1, 2, 3):
            message = f"level must be 1, 2 or 3 (or in the file name), got {lvl!r}"
            raise DataError(prefix + message, field="level", **loc)
        answer = row.get("answer")
        if isinstance(answer, list):
            answer = answer[0] if answer else None
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            raise DataError(prefix + "must be a call {name, parameters} or a list of them", field="answer", **loc)
        params = answer.get("parameters", answer.get("arguments", {}))
        if not isinstance(params, dict):
            raise DataError(prefix + "parameters must be an object", field="answer.parameters", **loc)
        rid = row.get("id", f"level-{lvl}-{index}")
        if not isinstance(rid, str) or rid in seen:
            raise DataError(prefix + f"id must be a unique string, got {rid!r}", field="id", **loc)
        seen.add(rid)
        records.append(ApiBankRecord(rid, int(lvl), ToolCall(answer["name"], params)))
    return records


def records_from_tasks(tasks: Sequence[ToolTask]) -> list[ApiBankRecord]:
    """Records for tasks loaded by `data.apibank.load_apibank` (level in `meta["level"]`, one expected call)."""
    records = []
    for task in tasks:
        level = task.meta.get("level")
        if level not in (1, 2, 3) or len(task.ground_truth) != 1:
            raise DataError(
                f"task {task.id!r} is not an API-Bank task (needs meta level 1-3 and one ground-truth call)",
                path=task.source or None,
                field="meta.level" if level not in (1, 2, 3) else "ground_truth",
            )
        records.append(ApiBankRecord(task.id, int(level), task.ground_truth[0].canonical_call()))
    return records


def _is_expected(call: ToolCall, expected: ToolCall) -> bool:
    # exact equality, as ToolRL's scorer (`parameters == answer_parameters`)
    return call.name == expected.name and call.arguments == expected.arguments


def score(
    records: Sequence[ApiBankRecord],
    predictions: Mapping[str, str],
    fmt: OutputFormat,
    match: MatchRule = "any",
    limits: ParseLimits = EVAL_LIMITS,
) -> dict[int, LevelScore]:
    """Per-level scores of the model texts in `predictions` (id -> text); a missing text is wrong."""
    levels: dict[int, LevelScore] = {}
    for record in records:
        lvl = levels.setdefault(record.level, LevelScore(record.level))
        lvl.total += 1
        text = predictions.get(record.id)
        if text is None:
            lvl.missing += 1
            lvl.failures.append({"id": record.id, "error_type": "missing_result"})
            continue
        parsed = parse_calls(text, fmt, limits)
        calls = parsed.calls if parsed.error is None else []
        if match == "only":
            ok = len(calls) == 1 and _is_expected(calls[0], record.expected)
        else:
            ok = any(_is_expected(c, record.expected) for c in calls)
        if any(c.name == record.expected.name for c in calls):
            lvl.name_correct += 1
        if ok:
            lvl.correct += 1
            continue
        if parsed.error is not None:
            kind = "decoder_failed"
        elif not calls:
            kind = "no_call"
        elif not any(c.name == record.expected.name for c in calls):
            kind = "wrong_name"
        elif match == "only" and len(calls) != 1:
            kind = "wrong_count"
        else:
            kind = "wrong_parameters"
        lvl.failures.append(
            {
                "id": record.id,
                "error_type": kind,
                "error": parsed.error or "",
                "expected": record.expected.to_json(),
                "predicted": [c.to_json() for c in calls],
                "raw": text[:2000],
            }
        )
    return dict(sorted(levels.items()))


def report_json(levels: Mapping[int, LevelScore], fmt: OutputFormat, match: MatchRule) -> dict[str, Any]:
    correct = sum(s.correct for s in levels.values())
    total = sum(s.total for s in levels.values())
    return {
        "benchmark": "apibank",
        "format": fmt.value,
        "match": match,
        "summary": {
            "correct": correct,
            "total": total,
            "micro_accuracy": correct / total if total else 0.0,
            "error_types": dict(Counter(f["error_type"] for s in levels.values() for f in s.failures).most_common()),
        },
        "categories": {
            f"level-{lvl}": {
                "accuracy": s.accuracy,
                "correct": s.correct,
                "total": s.total,
                "missing": s.missing,
                "name_accuracy": s.name_correct / s.total if s.total else 0.0,
                "error_types": dict(Counter(f["error_type"] for f in s.failures).most_common()),
                "failures": s.failures,
            }
            for lvl, s in levels.items()
        },
    }
