"""`run_eval`: score recorded model outputs on BFCL and API-Bank and write one report.

Generation is not part of this yet: the inputs are model texts recorded earlier (BFCL result
files, API-Bank prediction files). A rollout engine will produce those texts in a later stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from megatron_toolrl.data.apibank import load_apibank
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.eval import apibank
from megatron_toolrl.eval.bfcl import BfclEvalConfig, evaluate, load_results
from megatron_toolrl.eval.report import write_report
from megatron_toolrl.toolcall.types import OutputFormat


@dataclass(frozen=True)
class EvalConfig:
    """Which recorded outputs to score and where the report goes."""

    bfcl_results: str | None = None
    """BFCL result JSONL (`{"id", "result"}` per line); None skips BFCL."""
    bfcl: BfclEvalConfig = field(default_factory=BfclEvalConfig)
    """Categories, output format, checker model name, partial scoring."""
    apibank_records: tuple[str, ...] = ()
    """API-Bank record files (one per level, or one with a `level` field); empty skips API-Bank."""
    apibank_dialogues: tuple[str, ...] = ()
    """API-Bank dialogue files in `data.apibank`'s layout (one task per API turn), scored like records."""
    apibank_results: str | None = None
    """Model texts for the API-Bank records, JSONL `{"id", "result"}`."""
    apibank_fmt: OutputFormat = OutputFormat.JSON_LINES
    """Output format of the API-Bank texts. Default: ToolRL's API-Bank prompt asks for JSON lines."""
    apibank_match: apibank.MatchRule = "any"
    """`any`: one of the calls is the expected one (ToolRL's reported soft match); `only`: exactly one call."""
    out: str | None = None
    """Report path (JSON); None: not written."""

    def __post_init__(self) -> None:
        apibank_inputs = bool(self.apibank_records or self.apibank_dialogues)
        if self.bfcl_results is None and not apibank_inputs:
            raise ConfigError("nothing to evaluate: give BFCL results and/or API-Bank records", field="bfcl_results")
        if apibank_inputs != (self.apibank_results is not None):
            raise ConfigError("API-Bank needs both records (or dialogues) and results", field="apibank_results")
        if self.apibank_match not in ("any", "only"):
            raise ConfigError(f"must be 'any' or 'only', got {self.apibank_match!r}", field="apibank_match")


def run_eval(config: EvalConfig) -> dict[str, Any]:
    """Score, write the report if `config.out` is set, and return it (`{"bfcl": ..., "apibank": ...}`)."""
    report: dict[str, Any] = {}
    if config.bfcl_results is not None:
        report["bfcl"] = evaluate(load_results(config.bfcl_results), config.bfcl).to_json()
    if config.apibank_records or config.apibank_dialogues:
        records = [r for path in config.apibank_records for r in apibank.load_records(path)]
        for path in config.apibank_dialogues:
            tasks, _ = load_apibank(path)
            records += apibank.records_from_tasks(tasks)
        predictions = load_results(config.apibank_results)  # type: ignore[arg-type]
        levels = apibank.score(records, predictions, config.apibank_fmt, config.apibank_match)
        report["apibank"] = apibank.report_json(levels, config.apibank_fmt, config.apibank_match)
    if config.out is not None:
        write_report(report, Path(config.out))
    return report
