"""The project's canonical task file: one ToolTask per JSON Lines line.

    {"id": "...", "category": "single", "domain": "weather", "source": "synthetic",
     "messages": [{"role": "user", "content": "..."}],
     "tools": [{"name": "...", "description": "...",
                "parameters": {"type": "dict", "properties": {...}, "required": [...]}}],
     "ground_truth": [{"get_weather": {"city": ["Paris"], "unit": ["celsius", ""]}}],
     "meta": {}}

`ground_truth` is BFCL's possible-answer list; messages are chat turns (assistant history turns
may carry `tool_calls: [{"name", "arguments"}]`). `write_jsonl` then `load_jsonl` gives back equal
tasks. Unknown keys are rejected, so a typo cannot silently drop a field.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from megatron_toolrl.data.convert import ground_truth_from_bfcl
from megatron_toolrl.data.records import FieldError, LoadReport, OnError, json_type, load_records, require
from megatron_toolrl.data.schema import normalize_tools
from megatron_toolrl.data.task import CATEGORIES, ToolTask

_KEYS = ("id", "category", "domain", "source", "messages", "tools", "ground_truth", "meta")
_REQUIRED = ("id", "category", "messages", "tools", "ground_truth")


def task_to_dict(task: ToolTask) -> dict[str, Any]:
    """The JSON object of one task (the canonical line, before serialisation)."""
    return {
        "id": task.id,
        "category": task.category,
        "domain": task.domain,
        "source": task.source,
        "messages": task.messages,
        "tools": task.tools,
        "ground_truth": [gt.to_bfcl() for gt in task.ground_truth],
        "meta": task.meta,
    }


def task_from_dict(record: dict[str, Any]) -> ToolTask:
    """Validate one canonical record and build its task; FieldError names the bad field."""
    unknown = sorted(set(record) - set(_KEYS))
    if unknown:
        raise FieldError(unknown[0], f"unknown key (known: {', '.join(_KEYS)})")
    for key in _REQUIRED:
        if key not in record:
            raise FieldError(key, "missing")
    task_id = require(record, "id", str)
    category = require(record, "category", str)
    if category not in CATEGORIES:
        raise FieldError("category", f"expected one of {CATEGORIES}, got {category!r}")
    domain = require(record, "domain", str) if "domain" in record else ""
    source = require(record, "source", str) if "source" in record else ""
    meta = require(record, "meta", dict) if "meta" in record else {}
    messages = require(record, "messages", list)
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise FieldError(f"messages[{i}]", f"expected an object, got {json_type(message)}")
        require(message, "role", str, f"messages[{i}].")
        if "content" in message and not isinstance(message["content"], str):
            raise FieldError(f"messages[{i}].content", f"expected a string, got {json_type(message['content'])}")
    if not messages:
        raise FieldError("messages", "expected at least one message")
    tools = normalize_tools(require(record, "tools", list))
    ground_truth = ground_truth_from_bfcl(require(record, "ground_truth", list), {t["name"] for t in tools})
    try:
        return ToolTask(
            id=task_id,
            messages=messages,
            tools=tools,
            ground_truth=ground_truth,
            category=category,  # type: ignore[arg-type]
            domain=domain,
            source=source,
            meta=meta,
        )
    except ValueError as exc:
        raise FieldError("category", str(exc)) from None


def write_jsonl(tasks: Iterable[ToolTask], path: str | Path) -> int:
    """Write tasks as canonical JSON Lines (atomically: a temp file renamed into place).

    Returns the number written. Values must be plain JSON: NaN/inf are refused (they would not
    read back equal).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for task in tasks:
                handle.write(json.dumps(task_to_dict(task), ensure_ascii=False, allow_nan=False))
                handle.write("\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def load_jsonl(
    path: str | Path, on_error: OnError = "raise", source: str = "jsonl"
) -> tuple[list[ToolTask], LoadReport]:
    """Read a canonical JSON Lines task file (the inverse of `write_jsonl`)."""
    return load_records(path, source, lambda record, index: [task_from_dict(record)], on_error)
