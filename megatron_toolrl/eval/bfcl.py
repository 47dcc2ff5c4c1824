"""BFCL (v4, single-turn AST and relevance categories) scored with bfcl-eval's own decoder and checker.

For each entry the model text is decoded to BFCL's form `[{"func": {"arg": value}}, ...]`:
- `python` format (BFCL's prompting format): bfcl-eval's `default_decode_ast_prompting`, after
  dropping the reasoning before `</think>` as BFCL's Qwen handler does, and behind our guard
  against the `eval` inside BFCL's decoder (`python_screen.py`);
- our JSON formats (hermes, json_lines, json_list): our bounded parser (`toolcall.parse_calls`).

Then, exactly as bfcl-eval's `eval_runner` does: AST categories go through
`bfcl_eval.eval_checker.ast_eval.ast_checker.ast_checker(functions, decoded, possible_answer,
Language.PYTHON, category, model_name)`; irrelevance categories pass when decoding fails or the
decoded output is empty (`bfcl_eval.utils.is_empty_output`).

`model_name` is only used by the checker to decide whether `.` in function names was replaced by
`_` (`ModelConfig.underscore_to_dot`); the default `Qwen/Qwen3-8B` is a prompting model that keeps
dots, which is right for our prompts since they show the tools' names unchanged.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from megatron_toolrl.errors import ConfigError, DataError
from megatron_toolrl.eval.bfcl_import import Bfcl, import_bfcl
from megatron_toolrl.eval.limits import EVAL_LIMITS
from megatron_toolrl.data.bfcl import BFCL_CATEGORIES, BfclCategory
from megatron_toolrl.eval.python_screen import unsafe_reason
from megatron_toolrl.toolcall import parse_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits

DEFAULT_MODEL_NAME = "Qwen/Qwen3-8B"
_RAW_KEEP = 2000
"""Characters of the raw model text kept per failure in the report."""


@dataclass(frozen=True)
class BfclEvalConfig:
    """What to score and how."""

    categories: tuple[BfclCategory, ...] = BFCL_CATEGORIES
    """BFCL categories to score. Default: all ten single-turn Python categories."""
    fmt: OutputFormat = OutputFormat.PYTHON
    """How the model wrote its calls. Default python: BFCL's prompting format."""
    model_name: str = DEFAULT_MODEL_NAME
    """A key of bfcl-eval's MODEL_CONFIG_MAPPING; only its `underscore_to_dot` flag matters to the
    checker. Default: a prompting model that keeps dotted names (our choice)."""
    partial: bool = False
    """Score only the entries that have a result. Default False: a missing result is a failure
    (error type `missing_result`), as bfcl-eval refuses incomplete results without --partial-eval."""
    project_root: str | None = None
    """BFCL_PROJECT_ROOT for bfcl-eval's import side effects; None: a fresh temp dir (unless the
    environment variable is already set)."""
    limits: ParseLimits = EVAL_LIMITS
    """Bounds on the untrusted model text. Default: the parser's bounds with a 1 s time budget
    (`eval.limits.EVAL_LIMITS`), so a busy machine cannot change a score."""

    def __post_init__(self) -> None:
        for cat in self.categories:
            if cat not in BFCL_CATEGORIES:
                raise ConfigError(f"unknown BFCL category {cat!r}; supported: {BFCL_CATEGORIES}", field="categories")
        if not isinstance(self.fmt, OutputFormat):
            raise ConfigError(f"must be an OutputFormat, got {self.fmt!r}", field="fmt")


@dataclass(frozen=True)
class BfclEntry:
    """One BFCL test entry with its possible answer (None for relevance categories)."""

    id: str
    category: str
    functions: list[dict[str, Any]]
    question: list[Any]
    possible_answer: list[dict[str, Any]] | None


@dataclass
class EntryResult:
    """Outcome for one entry, in BFCL's error vocabulary."""

    id: str
    category: str
    valid: bool
    error_type: str = ""
    error: list[str] = field(default_factory=list)
    decoded: Any = None
    raw: str = ""


@dataclass
class CategoryScore:
    category: str
    correct: int
    total: int
    missing: int
    """Entries without a result (failures unless `partial`, then not in `total`)."""
    failures: list[EntryResult]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class BfclReport:
    model_name: str
    fmt: str
    categories: dict[str, CategoryScore]
    ignored_ids: list[str]
    """Result ids that belong to none of the scored categories."""

    def to_json(self) -> dict[str, Any]:
        correct = sum(c.correct for c in self.categories.values())
        total = sum(c.total for c in self.categories.values())
        accs = [c.accuracy for c in self.categories.values() if c.total]
        error_types = Counter(f.error_type for c in self.categories.values() for f in c.failures)
        return {
            "benchmark": "bfcl",
            "model_name": self.model_name,
            "format": self.fmt,
            "summary": {
                "correct": correct,
                "total": total,
                "micro_accuracy": correct / total if total else 0.0,
                "macro_accuracy": sum(accs) / len(accs) if accs else 0.0,
                "error_types": dict(error_types.most_common()),
                "ignored_ids": len(self.ignored_ids),
            },
            "categories": {
                name: {
                    "accuracy": c.accuracy,
                    "correct": c.correct,
                    "total": c.total,
                    "missing": c.missing,
                    "error_types": dict(Counter(f.error_type for f in c.failures).most_common()),
                    "failures": [_jsonable(asdict(f)) for f in c.failures],
                }
                for name, c in self.categories.items()
            },
        }


def load_category(category: str, bfcl: Bfcl | None = None) -> list[BfclEntry]:
    """The entries of one category from the data shipped inside bfcl-eval."""
    if category not in BFCL_CATEGORIES:
        raise ConfigError(f"unknown BFCL category {category!r}; supported: {BFCL_CATEGORIES}", field="categories")
    bfcl = bfcl or import_bfcl()
    prompts = bfcl.load_dataset_entry(category, include_prereq=False, include_language_specific_hint=False)
    answers: dict[str, Any] = {}
    if "irrelevance" not in category:
        answers = {a["id"]: a["ground_truth"] for a in bfcl.load_ground_truth_entry(category)}
    entries = []
    for p in prompts:
        if "irrelevance" not in category and p["id"] not in answers:
            raise DataError(f"BFCL entry {p['id']!r} has no possible answer", field="ground_truth")
        entries.append(BfclEntry(p["id"], category, p["function"], p["question"], answers.get(p["id"])))
    return entries


def load_results(path: str | Path) -> dict[str, str]:
    """A BFCL result file: one `{"id": ..., "result": "<model text>"}` per line."""
    path = Path(path)
    results: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not JSON: {exc.msg}", path=path, line=line_no) from exc
            if not isinstance(row, dict):
                raise DataError("each line must be a JSON object", path=path, line=line_no)
            if not isinstance(row.get("id"), str):
                raise DataError("missing or non-string id", path=path, line=line_no, field="id")
            if not isinstance(row.get("result"), str):
                raise DataError(
                    f"must be the model's text (a string), got {type(row.get('result')).__name__}",
                    path=path,
                    line=line_no,
                    field="result",
                )
            if row["id"] in results:
                raise DataError(f"duplicate id {row['id']!r}", path=path, line=line_no, field="id")
            results[row["id"]] = row["result"]
    return results


def strip_reasoning(text: str) -> str:
    """The answer after the reasoning: text after the last `</think>` (BFCL's Qwen handler rule)."""
    if "</think>" in text:
        return text.split("</think>")[-1].lstrip("\n")
    return text


@dataclass
class Decoded:
    calls: list[dict[str, Any]] | None
    """BFCL's decoded form, or None when decoding failed."""
    error: str = ""
    error_type: str = ""


def decode(text: str, fmt: OutputFormat, limits: ParseLimits, bfcl: Bfcl) -> Decoded:
    """Model text -> `[{"func": {"arg": value}}]` with BFCL's decoder (python) or ours (JSON formats)."""
    if fmt is OutputFormat.PYTHON:
        answer = strip_reasoning(text)
        reason = unsafe_reason(answer, limits)
        if reason is not None:
            return Decoded(None, f"refused before decoding: {reason}", "ast_decoder:unsafe_expression")
        try:
            return Decoded(bfcl.decode_ast_prompting(answer, bfcl.return_format_python, False))
        except Exception as exc:  # bfcl's decoder signals every malformed text by raising
            return Decoded(None, f"Invalid syntax. Failed to decode AST. {exc}", "ast_decoder:decoder_failed")
    parsed = parse_calls(text, fmt, limits)
    if parsed.error is not None:
        return Decoded(None, f"Invalid syntax. Failed to decode AST. {parsed.error}", "ast_decoder:decoder_failed")
    return Decoded([{c.name: dict(c.arguments)} for c in parsed.calls])


def score_entry(entry: BfclEntry, text: str, config: BfclEvalConfig, bfcl: Bfcl) -> EntryResult:
    """One entry, following bfcl-eval's `_evaluate_single_ast_entry` / `_evaluate_single_relevance_entry`."""
    decoded = decode(text, config.fmt, config.limits, bfcl)
    raw = text[:_RAW_KEEP]
    if "irrelevance" in entry.category:
        has_call = decoded.calls is not None and not bfcl.is_empty_output(decoded.calls)
        if has_call:
            return EntryResult(
                entry.id,
                entry.category,
                False,
                "irrelevance_error:decoder_success",
                ["Valid syntax. Successfully decode AST when it should not."],
                decoded.calls,
                raw,
            )
        return EntryResult(entry.id, entry.category, True)
    if decoded.calls is None:
        return EntryResult(entry.id, entry.category, False, decoded.error_type, [decoded.error], None, raw)
    if not bfcl.is_function_calling_format_output(decoded.calls):
        return EntryResult(
            entry.id,
            entry.category,
            False,
            "ast_decoder:decoder_wrong_output_format",
            ["Did not output in the specified format."],
            str(decoded.calls)[:_RAW_KEEP],
            raw,
        )
    try:
        checked = bfcl.ast_checker(
            entry.functions,
            decoded.calls,
            entry.possible_answer,
            bfcl.language_python,
            entry.category,
            config.model_name,
        )
    except Exception as exc:  # bfcl-eval would crash the whole run; we fail this entry and say why
        return EntryResult(
            entry.id, entry.category, False, "ast_checker:exception", [repr(exc)[:500]], decoded.calls, raw
        )
    if checked["valid"]:
        return EntryResult(entry.id, entry.category, True)
    return EntryResult(
        entry.id, entry.category, False, checked["error_type"], list(checked["error"]), decoded.calls, raw
    )


def check_model_name(model_name: str, bfcl: Bfcl) -> None:
    # the checker looks the name up after replacing "_" by "/" (result-folder spelling)
    if model_name.replace("_", "/") not in bfcl.model_config_mapping:
        raise ConfigError(
            f"{model_name!r} is not a bfcl-eval model (MODEL_CONFIG_MAPPING key, '/' spelling, no '_')",
            field="model_name",
        )


def evaluate(results: Mapping[str, str] | str | Path, config: BfclEvalConfig = BfclEvalConfig()) -> BfclReport:
    """Score recorded model texts (id -> text, or a BFCL result JSONL path) on `config.categories`."""
    if not isinstance(results, Mapping):
        results = load_results(results)
    bfcl = import_bfcl(config.project_root)
    check_model_name(config.model_name, bfcl)
    scored_ids: set[str] = set()
    categories: dict[str, CategoryScore] = {}
    for category in config.categories:
        entries = load_category(category, bfcl)
        correct, total, missing, failures = 0, 0, 0, []
        for entry in entries:
            scored_ids.add(entry.id)
            text = results.get(entry.id)
            if text is None:
                missing += 1
                if config.partial:
                    continue
                total += 1
                failures.append(EntryResult(entry.id, category, False, "missing_result", ["no model result"]))
                continue
            total += 1
            outcome = score_entry(entry, text, config, bfcl)
            if outcome.valid:
                correct += 1
            else:
                failures.append(outcome)
        categories[category] = CategoryScore(category, correct, total, missing, failures)
    ignored = sorted(i for i in results if i not in scored_ids)
    return BfclReport(config.model_name, config.fmt.value, categories, ignored)


def _jsonable(value: Any) -> Any:
    """Decoded values may hold tuples or other Python objects; keep the report valid JSON."""
    return json.loads(json.dumps(value, default=repr))
