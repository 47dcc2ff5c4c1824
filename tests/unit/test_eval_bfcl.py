"""BFCL scoring against bfcl-eval's own decoder and checker, on real entries shipped with bfcl-eval.

Oracle answers are built from the possible answers (first accepted value of each argument) and
rendered by the toolcall renderer; every verdict is compared with a direct call of bfcl-eval's
`default_decode_ast_prompting` + `ast_checker` (or its relevance rule).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from megatron_toolrl.data.task import GroundTruthCall, ToolCall
from megatron_toolrl.errors import ConfigError, DataError
from megatron_toolrl.eval import bfcl as ev
from megatron_toolrl.eval.bfcl_import import Bfcl, import_bfcl
from megatron_toolrl.eval.cli import main
from megatron_toolrl.toolcall import render_calls
from megatron_toolrl.toolcall.types import OutputFormat

F = OutputFormat
PER_CATEGORY = 4
PLAIN = "None of the given functions can answer this question."


@pytest.fixture(scope="module")
def bfcl(tmp_path_factory: pytest.TempPathFactory) -> Bfcl:
    return import_bfcl(tmp_path_factory.mktemp("bfcl_root"))


@pytest.fixture(scope="module")
def entries(bfcl: Bfcl) -> list[ev.BfclEntry]:
    out = []
    for category in ev.BFCL_CATEGORIES:
        out += ev.load_category(category, bfcl)[:PER_CATEGORY]
    return out


def oracle_calls(entry: ev.BfclEntry) -> list[ToolCall]:
    return [GroundTruthCall.from_bfcl(a).canonical_call() for a in entry.possible_answer or []]


def oracle_text(entry: ev.BfclEntry, fmt: OutputFormat) -> str:
    if entry.possible_answer is None:
        return PLAIN
    return render_calls(oracle_calls(entry), fmt)


def corrupted_text(entry: ev.BfclEntry) -> str:
    if entry.possible_answer is None:  # irrelevance: calling anything is wrong
        return render_calls([ToolCall(entry.functions[0]["name"], {})], F.PYTHON)
    calls = oracle_calls(entry)
    calls[0] = ToolCall(calls[0].name + "_v2", calls[0].arguments)
    return render_calls(calls, F.PYTHON)


def bfcl_direct(bfcl_mod: Bfcl, entry: ev.BfclEntry, text: str, model_name: str = ev.DEFAULT_MODEL_NAME) -> bool:
    """bfcl-eval's verdict, called directly (python format), as in its eval_runner."""
    return bfcl_direct_result(entry, text, model_name)[0]


def bfcl_direct_result(entry: ev.BfclEntry, text: str, model_name: str = ev.DEFAULT_MODEL_NAME) -> tuple[bool, str]:
    """(valid, error_type) from bfcl-eval's own decoder and checker, with its runner's wrapping."""
    from bfcl_eval.constants.enums import Language, ReturnFormat
    from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker
    from bfcl_eval.model_handler.utils import default_decode_ast_prompting
    from bfcl_eval.utils import is_empty_output

    try:
        decoded = default_decode_ast_prompting(text, ReturnFormat.PYTHON, False)
    except Exception:
        if entry.possible_answer is None:
            return True, ""
        return False, "ast_decoder:decoder_failed"
    if entry.possible_answer is None:
        return (True, "") if is_empty_output(decoded) else (False, "irrelevance_error:decoder_success")
    out = ast_checker(entry.functions, decoded, entry.possible_answer, Language.PYTHON, entry.category, model_name)
    return out["valid"], "" if out["valid"] else out["error_type"]


def test_oracle_answers_score_100_percent_like_bfcl(bfcl: Bfcl, entries: list[ev.BfclEntry]) -> None:
    results = {e.id: oracle_text(e, F.PYTHON) for e in entries}
    report = ev.evaluate(results, ev.BfclEvalConfig(partial=True))
    for category in ev.BFCL_CATEGORIES:
        score = report.categories[category]
        assert (score.correct, score.total) == (PER_CATEGORY, PER_CATEGORY), (category, score.failures[:1])
    for e in entries:
        assert bfcl_direct(bfcl, e, results[e.id]) is True, e.id
    assert report.ignored_ids == []


def test_corrupted_answers_fail_like_bfcl(bfcl: Bfcl, entries: list[ev.BfclEntry]) -> None:
    config = ev.BfclEvalConfig(partial=True)
    for e in entries:
        text = corrupted_text(e)
        ours = ev.score_entry(e, text, config, bfcl)
        assert ours.valid is False
        assert (ours.valid, ours.error_type) == bfcl_direct_result(e, text), e.id


@pytest.mark.parametrize("fmt", [F.HERMES, F.JSON_LINES, F.JSON_LIST])
def test_json_formats_decode_to_bfcl_form(bfcl: Bfcl, entries: list[ev.BfclEntry], fmt: OutputFormat) -> None:
    config = ev.BfclEvalConfig(fmt=fmt)
    for e in entries:
        text = "<think>I should call the function.</think>\n" + oracle_text(e, fmt)
        assert ev.score_entry(e, text, config, bfcl).valid, e.id
    # a truncated block does not decode: AST categories fail, irrelevance passes (BFCL's rule)
    simple = next(e for e in entries if e.category == "simple_python")
    irrelevant = next(e for e in entries if e.category == "irrelevance")
    truncated = oracle_text(simple, fmt)[:-15]
    assert ev.score_entry(simple, truncated, config, bfcl).error_type == "ast_decoder:decoder_failed"
    assert ev.score_entry(irrelevant, truncated, config, bfcl).valid


def test_reasoning_is_dropped_before_bfcl_decodes(bfcl: Bfcl, entries: list[ev.BfclEntry]) -> None:
    e = next(e for e in entries if e.category == "parallel")
    text = "<think>\nTwo calls [maybe(x=1)] are needed.\n</think>\n\n" + oracle_text(e, F.PYTHON)
    assert ev.score_entry(e, text, ev.BfclEvalConfig(), bfcl).valid
    assert bfcl_direct(bfcl, e, ev.strip_reasoning(text))


def test_dotted_names_and_the_underscore_to_dot_flag(bfcl: Bfcl) -> None:
    entry = next(e for e in ev.load_category("simple_python", bfcl) if "." in e.functions[0]["name"])
    text = oracle_text(entry, F.PYTHON)
    assert "." in text.split("(")[0]  # the decoder keeps `math.factorial` as a dotted name
    assert ev.score_entry(entry, text, ev.BfclEvalConfig(), bfcl).valid
    # a model whose API forbids dots: the checker expects `math_factorial`, so the dotted call fails
    fc_model = "gpt-4.1-2025-04-14-FC"
    assert bfcl.model_config_mapping[fc_model].underscore_to_dot
    result = ev.score_entry(entry, text, ev.BfclEvalConfig(model_name=fc_model), bfcl)
    assert not result.valid and result.valid == bfcl_direct(bfcl, entry, text, fc_model)
    underscored = text.replace(entry.functions[0]["name"], entry.functions[0]["name"].replace(".", "_"), 1)
    assert ev.score_entry(entry, underscored, ev.BfclEvalConfig(model_name=fc_model), bfcl).valid


def test_eval_in_bfcl_decoder_is_guarded(bfcl: Bfcl, entries: list[ev.BfclEntry], tmp_path: Path) -> None:
    e = next(e for e in entries if e.category == "simple_python")
    name = e.functions[0]["name"]
    marker = tmp_path / "pwned"
    hostile = [
        f"[{name}(x=(__import__('pathlib').Path({str(marker)!r}).touch() or 1) + 1)]",
        f"[{name}(x=9**9**9)]",
        f"[{name}(x='a' * 10**12)]",
        f"[{name}(x=(lambda: 1))]",
        f"[{name}(x='%999999999d' % 1)]",
    ]
    config = ev.BfclEvalConfig()
    for text in hostile:
        start = time.perf_counter()
        result = ev.score_entry(e, text, config, bfcl)
        assert result.error_type == "ast_decoder:unsafe_expression", text
        assert time.perf_counter() - start < 1.0
    assert not marker.exists()
    # without the guard, bfcl-eval's decoder would have run the model's code (touching a temp file)
    bfcl.decode_ast_prompting(hostile[0], bfcl.return_format_python, False)
    assert marker.exists()
    # plain arithmetic still reaches BFCL's decoder, which computes it
    decoded = ev.decode(f"[{name}(x=2*5, y=-3, z=1/4, w='a' + 'b')]", F.PYTHON, config.limits, bfcl)
    assert decoded.calls == [{name: {"x": 10, "y": -3, "z": 0.25, "w": "ab"}}]
    # ...and division by zero fails the decode (as in BFCL) instead of crashing the run
    assert ev.decode(f"[{name}(x=1/0)]", F.PYTHON, config.limits, bfcl).error_type == "ast_decoder:decoder_failed"


def test_missing_results_fail_unless_partial(bfcl: Bfcl) -> None:
    entries = ev.load_category("live_parallel", bfcl)
    results = {entries[0].id: oracle_text(entries[0], F.PYTHON), "not_a_bfcl_id": "[]"}
    config = ev.BfclEvalConfig(categories=("live_parallel",))
    full = ev.evaluate(results, config).categories["live_parallel"]
    assert (full.correct, full.total, full.missing) == (1, len(entries), len(entries) - 1)
    assert {f.error_type for f in full.failures} == {"missing_result"}
    partial = ev.evaluate(results, ev.BfclEvalConfig(categories=("live_parallel",), partial=True))
    assert (partial.categories["live_parallel"].correct, partial.categories["live_parallel"].total) == (1, 1)
    assert partial.ignored_ids == ["not_a_bfcl_id"]
    report = partial.to_json()
    assert report["summary"]["micro_accuracy"] == 1.0 and report["summary"]["ignored_ids"] == 1
    json.dumps(report)


def test_bad_inputs_are_named(tmp_path: Path, bfcl: Bfcl) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"id": "simple_python_0", "result": "[]"}\n{"id": "simple_python_1", "result": 3}\n')
    with pytest.raises(DataError, match=r"results.jsonl:2: field 'result'"):
        ev.load_results(path)
    path.write_text('{"id": "a", "result": ""}\n{"id": "a", "result": ""}\n')
    with pytest.raises(DataError, match=r":2: field 'id': duplicate"):
        ev.load_results(path)
    path.write_text('{"id": "a", "result": ""}\nnot json\n')
    with pytest.raises(DataError, match=r":2: not JSON"):
        ev.load_results(path)
    with pytest.raises(ConfigError, match="categories"):
        ev.BfclEvalConfig(categories=("simple_java",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="model_name"):
        ev.evaluate({}, ev.BfclEvalConfig(categories=("irrelevance",), model_name="no-such-model"))


def test_cli_writes_the_report(tmp_path: Path, entries: list[ev.BfclEntry], capsys: pytest.CaptureFixture) -> None:
    chosen = [e for e in entries if e.category in ("multiple", "live_irrelevance")]
    results = tmp_path / "r.jsonl"
    lines = [{"id": e.id, "result": oracle_text(e, F.PYTHON)} for e in chosen]
    lines[0]["result"] = corrupted_text(chosen[0])
    results.write_text("".join(json.dumps(x) + "\n" for x in lines))
    out = tmp_path / "report.json"
    argv = ["--bfcl-results", str(results), "--categories", "multiple,live_irrelevance", "--partial"]
    code = main(argv + ["--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())["bfcl"]
    assert report["categories"]["multiple"]["correct"] == PER_CATEGORY - 1
    assert report["categories"]["live_irrelevance"]["accuracy"] == 1.0
    failure = report["categories"]["multiple"]["failures"][0]
    assert failure["id"] == chosen[0].id and "wrong_func_name" in failure["error_type"]
    assert "multiple" in capsys.readouterr().out
    assert main(["--bfcl-results", str(results), "--categories", "simple_java"]) == 2
