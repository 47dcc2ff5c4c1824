"""Writing evaluation reports (JSON) and printing them as tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from rich.console import Console
from rich.table import Table


def write_report(report: Mapping[str, Any], path: str | Path) -> Path:
    """Write the report as indented JSON (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=repr) + "\n", encoding="utf-8")
    return path


def table(benchmark_report: Mapping[str, Any]) -> Table:
    """One benchmark's report (`bfcl.BfclReport.to_json()` or `apibank.report_json`) as a table."""
    name = benchmark_report.get("benchmark", "eval")
    t = Table(title=f"{name} ({benchmark_report.get('format', '')})")
    t.add_column("category")
    t.add_column("accuracy", justify="right")
    t.add_column("correct / total", justify="right")
    t.add_column("missing", justify="right")
    t.add_column("top error types")
    for cat, row in benchmark_report["categories"].items():
        errors = ", ".join(f"{k} ({v})" for k, v in list(row["error_types"].items())[:3])
        accuracy, counts = f"{100 * row['accuracy']:.2f}%", f"{row['correct']} / {row['total']}"
        t.add_row(cat, accuracy, counts, str(row["missing"]), errors)
    s = benchmark_report["summary"]
    accuracy, counts = f"{100 * s['micro_accuracy']:.2f}%", f"{s['correct']} / {s['total']}"
    t.add_row("overall (micro)", accuracy, counts, "", "", style="bold")
    if "macro_accuracy" in s:
        t.add_row("overall (macro)", f"{100 * s['macro_accuracy']:.2f}%", "", "", "", style="bold")
    return t


def print_report(report: Mapping[str, Any], console: Console | None = None) -> None:
    """Print every benchmark section of a combined report `{"bfcl": ..., "apibank": ...}`."""
    console = console or Console()
    for section in report.values():
        if isinstance(section, Mapping) and "categories" in section:
            console.print(table(section))
