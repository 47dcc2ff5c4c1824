"""The canonical JSONL task file: exact round trip and row validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megatron_toolrl.data.bfcl import load_bfcl
from megatron_toolrl.data.jsonl import load_jsonl, task_to_dict, write_jsonl
from megatron_toolrl.data.loaders import load_dataset
from megatron_toolrl.data.synthetic import generate_tasks
from megatron_toolrl.data.task import GroundTruthCall, ToolTask
from megatron_toolrl.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


def _every_kind_of_task() -> list[ToolTask]:
    tasks = generate_tasks(300, seed=11)
    for fmt, name in [
        ("toolace", "toolace_good.json"),
        ("xlam", "xlam_good.json"),
        ("hammer", "hammer_good.jsonl"),
        ("api_bank", "apibank_good.jsonl"),
    ]:
        tasks += load_dataset(fmt, FIXTURES / name)[0]
    tasks += load_bfcl(("simple_python", "parallel_multiple", "irrelevance"))[0][::7]
    return tasks


def test_round_trip_is_exact(tmp_path):
    tasks = _every_kind_of_task()
    path = tmp_path / "tasks.jsonl"
    assert write_jsonl(tasks, path) == len(tasks)
    loaded, report = load_jsonl(path)
    assert loaded == tasks
    assert (report.read, report.loaded, report.skipped) == (len(tasks), len(tasks), 0)
    # Writing what was read gives the same bytes: the format is a fixed point.
    again = tmp_path / "again.jsonl"
    write_jsonl(loaded, again)
    assert again.read_bytes() == path.read_bytes()
    # Every line is the documented object.
    first = json.loads(path.read_text().splitlines()[0])
    assert first == task_to_dict(tasks[0])
    assert set(first) == {"id", "category", "domain", "source", "messages", "tools", "ground_truth", "meta"}


def test_json_schema_spellings_are_read_as_bfcl_types(tmp_path):
    row = {
        "id": "x",
        "category": "single",
        "messages": [{"role": "user", "content": "Add 2.5 and 3"}],
        "tools": [
            {
                "name": "add",
                "description": "",
                "parameters": {
                    "type": "object",
                    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a", "b"],
                },
            }
        ],
        "ground_truth": [{"add": {"a": [2.5], "b": [3.0]}}],
    }
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (task,), _ = load_jsonl(path)
    assert task.tools[0]["parameters"]["type"] == "dict"
    assert {p["type"] for p in task.tools[0]["parameters"]["properties"].values()} == {"float"}
    assert task.domain == "" and task.source == "" and task.meta == {}


def test_malformed_rows_name_line_and_field():
    path = FIXTURES / "tasks_bad.jsonl"
    with pytest.raises(DataError) as info:
        load_jsonl(path)
    assert str(info.value) == f"{path}:2: field 'tools[2].parameters': expected an object, got a string"
    tasks, report = load_jsonl(path, on_error="skip")
    assert [t.id for t in tasks] == ["t1"]
    assert [(r.line, r.field) for r in report.skipped_rows] == [
        (2, "tools[2].parameters"),
        (3, "extra"),
        (4, "ground_truth[0]"),
        (5, "category"),
        (6, "id"),
    ]


def test_values_json_cannot_hold_are_refused(tmp_path):
    task = ToolTask(
        id="nan",
        messages=[{"role": "user", "content": "x"}],
        tools=[
            {
                "name": "f",
                "description": "",
                "parameters": {"type": "dict", "properties": {"v": {"type": "float"}}, "required": ["v"]},
            }
        ],
        ground_truth=[GroundTruthCall("f", {"v": [float("nan")]})],
        category="single",
    )
    path = tmp_path / "nan.jsonl"
    with pytest.raises(ValueError):
        write_jsonl([task], path)
    assert not path.exists() and list(tmp_path.iterdir()) == []  # no partial or temp file left
