"""API-Bank scoring: per-level accuracy of expected vs predicted API calls, and bad records named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from megatron_toolrl.data.task import ToolCall
from megatron_toolrl.errors import ConfigError, DataError
from megatron_toolrl.eval import apibank
from megatron_toolrl.eval.cli import main
from megatron_toolrl.eval.runner import EvalConfig
from megatron_toolrl.toolcall import render_calls
from megatron_toolrl.toolcall.types import OutputFormat

F = OutputFormat
QUERY = {"name": "QueryMeeting", "parameters": {"user_name": "John"}}
MODIFY = {"name": "ModifyRegistration", "parameters": {"appointment_id": "90123", "new_appointment_date": "2023-03-26"}}


def write_level1(tmp_path: Path) -> Path:
    # ToolRL's processed layout: a JSON list, the level only in the file name, answer as a list
    rows = [{"system": "...", "user": "...", "answer": [QUERY]}, {"system": "...", "user": "...", "answer": [MODIFY]}]
    path = tmp_path / "level-1-api_processed.json"
    path.write_text(json.dumps(rows))
    return path


def write_mixed(tmp_path: Path) -> Path:
    rows = [
        {"id": "l2-a", "level": 2, "answer": QUERY},
        {"id": "l3-a", "level": 3, "answer": {"name": "GetToday", "arguments": {}}},
        {"id": "l3-b", "level": 3, "answer": QUERY},
    ]
    path = tmp_path / "apibank.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def say(calls: list[dict], fmt: OutputFormat = F.JSON_LINES) -> str:
    return "<think>...</think>\n" + render_calls([ToolCall(c["name"], c["parameters"]) for c in calls], fmt)


def test_per_level_accuracy(tmp_path: Path) -> None:
    records = apibank.load_records(write_level1(tmp_path)) + apibank.load_records(write_mixed(tmp_path))
    ids = [("level-1-0", 1), ("level-1-1", 1), ("l2-a", 2), ("l3-a", 3), ("l3-b", 3)]
    assert [(r.id, r.level) for r in records] == ids
    wrong_date = {"name": MODIFY["name"], "parameters": {**MODIFY["parameters"], "new_appointment_date": "2023-03-25"}}
    predictions = {
        "level-1-0": say([QUERY]),  # right
        "level-1-1": say([wrong_date]),  # right name, wrong parameter
        "l2-a": say([{"name": "GetToday", "parameters": {}}, QUERY]),  # right among two calls
        "l3-a": "<think>x</think>\n<tool_call>\n{\"name\": \"GetToday\"",  # truncated
        # l3-b: missing
    }
    levels = apibank.score(records, predictions, F.JSON_LINES)
    assert {k: (v.correct, v.total) for k, v in levels.items()} == {1: (1, 2), 2: (1, 1), 3: (0, 2)}
    assert levels[1].name_correct == 2 and levels[3].missing == 1
    kinds = sorted(f["error_type"] for lvl in levels.values() for f in lvl.failures)
    assert kinds == ["decoder_failed", "missing_result", "wrong_parameters"]
    strict = apibank.score(records, predictions, F.JSON_LINES, match="only")
    assert strict[2].correct == 0 and strict[2].failures[0]["error_type"] == "wrong_count"
    report = apibank.report_json(levels, F.JSON_LINES, "any")
    assert report["categories"]["level-1"]["accuracy"] == 0.5
    assert report["summary"]["micro_accuracy"] == pytest.approx(2 / 5)


@pytest.mark.parametrize(
    "rows, match",
    [
        ([{"answer": QUERY}], "level must be 1, 2 or 3"),
        ([{"level": 4, "answer": QUERY}], "level must be 1, 2 or 3"),
        ([{"level": 1, "answer": "QueryMeeting"}], "field 'answer'"),
        ([{"level": 1, "answer": {"name": "Q", "parameters": [1]}}], "field 'answer.parameters'"),
        ([{"id": "x", "level": 1, "answer": QUERY}, {"id": "x", "level": 1, "answer": QUERY}], r":2: field 'id'"),
    ],
)
def test_bad_records_are_named(tmp_path: Path, rows: list, match: str) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=match):
        apibank.load_records(path)


def test_runner_and_cli(tmp_path: Path) -> None:
    records = write_level1(tmp_path)
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": "level-1-0", "result": say([QUERY], F.HERMES)}) + "\n")
    out = tmp_path / "report.json"
    argv = ["--apibank-records", str(records), "--apibank-results", str(preds), "--apibank-format", "hermes"]
    argv += ["--out", str(out)]
    assert main(argv) == 0
    level1 = json.loads(out.read_text())["apibank"]["categories"]["level-1"]
    assert (level1["correct"], level1["total"], level1["missing"]) == (1, 2, 1)
    with pytest.raises(ConfigError, match="apibank_results"):
        EvalConfig(apibank_records=(str(records),))
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        EvalConfig()


def test_tasks_from_the_data_loader(tmp_path: Path) -> None:
    from megatron_toolrl.data.apibank import load_apibank

    dialogue = {
        "id": "AddAlarm-level-1-1",
        "level": 1,
        "apis": [
            {
                "name": "AddAlarm",
                "description": "The API for setting an alarm.",
                "input_parameters": {"time": {"type": "str", "description": "HH:MM:SS"}},
                "output_parameters": {"status": {"type": "str", "description": "success or failed"}},
            }
        ],
        "dialogue": [
            {"role": "User", "text": "Set an alarm for 6:30."},
            {
                "role": "API",
                "api_name": "AddAlarm",
                "param_dict": {"time": "06:30:00"},
                "result": {"output": "success", "exception": None},
            },
            {"role": "AI", "text": "Done."},
        ],
    }
    path = tmp_path / "apibank_dialogues.jsonl"
    path.write_text(json.dumps(dialogue) + "\n")
    tasks, _ = load_apibank(path)
    records = apibank.records_from_tasks(tasks)
    assert [(r.level, r.expected) for r in records] == [(1, ToolCall("AddAlarm", {"time": "06:30:00"}))]
    right = render_calls([ToolCall("AddAlarm", {"time": "06:30:00"})], F.JSON_LIST)
    levels = apibank.score(records, {records[0].id: right}, F.JSON_LIST)
    assert (levels[1].correct, levels[1].total) == (1, 1)
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": records[0].id, "result": right}) + "\n")
    out = tmp_path / "report.json"
    argv = ["--apibank-dialogues", str(path), "--apibank-results", str(preds), "--apibank-format", "json_list"]
    argv += ["--out", str(out)]
    assert main(argv) == 0
    assert json.loads(out.read_text())["apibank"]["summary"]["micro_accuracy"] == 1.0
