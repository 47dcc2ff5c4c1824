"""BFCL v4 loader against the data shipped in the installed bfcl-eval package."""

from __future__ import annotations

import json
import shutil

import pytest

from megatron_toolrl.data.bfcl import BFCL_CATEGORIES, BFCL_TO_CATEGORY, bfcl_data_dir, load_bfcl, load_bfcl_category
from megatron_toolrl.data.convert import infer_category
from megatron_toolrl.data.loaders import load_dataset
from megatron_toolrl.errors import DataError

# Published sizes of the non-live AST categories (BFCL v4 leaderboard, bfcl-eval 2026.3.23).
SHIPPED_COUNTS = {"simple_python": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200, "irrelevance": 240}


@pytest.fixture(scope="module")
def all_tasks():
    tasks, report = load_bfcl(BFCL_CATEGORIES)
    return tasks, report


def test_counts_equal_the_shipped_counts(all_tasks):
    tasks, report = all_tasks
    counts = {c: sum(t.meta["bfcl_category"] == c for t in tasks) for c in BFCL_CATEGORIES}
    for category, expected in SHIPPED_COUNTS.items():
        assert counts[category] == expected
    # Every line of every question file became a task; nothing was skipped.
    lines = {
        c: sum(1 for line in (bfcl_data_dir() / f"BFCL_v4_{c}.json").open() if line.strip()) for c in BFCL_CATEGORIES
    }
    assert counts == lines
    assert report.skipped == 0 and report.read == report.loaded == len(tasks)
    assert len({t.id for t in tasks}) == len(tasks)


def test_ground_truth_equals_the_possible_answer_files(all_tasks):
    tasks, _ = all_tasks
    by_id = {t.id: t for t in tasks}
    checked = 0
    for category in BFCL_CATEGORIES:
        path = bfcl_data_dir() / "possible_answer" / f"BFCL_v4_{category}.json"
        if BFCL_TO_CATEGORY[category] == "irrelevance":
            assert not path.exists()
            continue
        for line in path.open():
            record = json.loads(line)
            task = by_id[record["id"]]
            assert [gt.to_bfcl() for gt in task.ground_truth] == record["ground_truth"]
            # Every ground truth parses into a correct reference answer of known functions.
            names = set(task.tool_names)
            assert all(call.name in names for call in task.reference_answer())
            checked += 1
    assert checked == sum(1 for t in tasks if t.category != "irrelevance")


def test_categories_follow_the_files_and_the_inference_rule(all_tasks):
    tasks, _ = all_tasks
    for task in tasks:
        assert task.category == BFCL_TO_CATEGORY[task.meta["bfcl_category"]]
    # The inference used for other datasets reproduces BFCL's own labels on the non-live files.
    non_live = [t for t in tasks if not t.meta["bfcl_category"].startswith("live_")]
    assert len(non_live) == sum(SHIPPED_COUNTS.values())
    assert all(infer_category([g.name for g in t.ground_truth], len(t.tools)) == t.category for t in non_live)


def test_question_and_functions_are_kept(all_tasks):
    tasks, _ = all_tasks
    first = json.loads((bfcl_data_dir() / "BFCL_v4_simple_python.json").open().readline())
    task = next(t for t in tasks if t.id == first["id"])
    assert task.messages == [m for turn in first["question"] for m in turn]
    assert task.tools == first["function"]  # BFCL docs are already canonical: unchanged


def test_broken_copy_reports_file_line_field(tmp_path):
    src = bfcl_data_dir()
    (tmp_path / "possible_answer").mkdir()
    shutil.copy(
        src / "possible_answer" / "BFCL_v4_parallel.json", tmp_path / "possible_answer" / "BFCL_v4_parallel.json"
    )
    lines = (src / "BFCL_v4_parallel.json").read_text().splitlines()
    row = json.loads(lines[4])
    row["function"][0]["parameters"]["required"] = ["no_such_param"]
    lines[4] = json.dumps(row)
    (tmp_path / "BFCL_v4_parallel.json").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as info:
        load_bfcl_category("parallel", data_dir=tmp_path)
    assert (info.value.line, info.value.field) == (5, "function[0].parameters.required")
    tasks, report = load_bfcl_category("parallel", data_dir=tmp_path, on_error="skip")
    assert len(tasks) == 199 and report.skipped == 2  # the bad question, and its now orphaned answer
    assert [(r.line, r.field) for r in report.skipped_rows] == [(5, "function[0].parameters.required"), (5, "id")]


def test_load_dataset_reads_a_bfcl_category_by_name():
    tasks, report = load_dataset("bfcl", "multiple")
    assert len(tasks) == SHIPPED_COUNTS["multiple"] == report.loaded
    with pytest.raises(ValueError, match="BFCL category"):
        load_dataset("bfcl", "multi_turn_base")
