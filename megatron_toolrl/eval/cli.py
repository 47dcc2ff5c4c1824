"""`megatron-toolrl eval`: score recorded outputs on BFCL / API-Bank, print a table, write a report."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from megatron_toolrl.errors import ToolRLError
from megatron_toolrl.eval.bfcl import BFCL_CATEGORIES, DEFAULT_MODEL_NAME, BfclEvalConfig
from megatron_toolrl.eval.report import print_report
from megatron_toolrl.eval.runner import EvalConfig, run_eval
from megatron_toolrl.toolcall.types import OutputFormat

_FORMATS = [f.value for f in OutputFormat]


def build_parser(prog: str = "megatron-toolrl eval") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--bfcl-results", metavar="FILE", help='BFCL result JSONL: one {"id", "result"} per line')
    p.add_argument(
        "--categories",
        nargs="+",
        default=list(BFCL_CATEGORIES),
        metavar="CAT",
        help=f"BFCL categories, space- or comma-separated (default: all of {', '.join(BFCL_CATEGORIES)})",
    )
    p.add_argument("--format", dest="fmt", choices=_FORMATS, default=OutputFormat.PYTHON.value,
                   help="how the model wrote its calls in the BFCL results (default: python)")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME,
                   help="bfcl-eval model key; only its underscore_to_dot flag matters (default: %(default)s)")
    p.add_argument("--partial", action="store_true", help="score only entries that have a result")
    p.add_argument("--bfcl-project-root", metavar="DIR", help="BFCL_PROJECT_ROOT (default: a temp dir)")
    p.add_argument("--apibank-records", nargs="+", default=[], metavar="FILE", help="API-Bank record files")
    p.add_argument("--apibank-dialogues", nargs="+", default=[], metavar="FILE",
                   help="API-Bank dialogue files in the data.apibank layout (one task per API turn)")
    p.add_argument("--apibank-results", metavar="FILE", help='API-Bank model texts, JSONL {"id", "result"}')
    p.add_argument("--apibank-format", choices=_FORMATS, default=OutputFormat.JSON_LINES.value)
    p.add_argument("--apibank-match", choices=["any", "only"], default="any")
    p.add_argument("--out", metavar="FILE", help="write the JSON report here")
    return p


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    categories = tuple(c for item in args.categories for c in item.split(",") if c)
    return EvalConfig(
        bfcl_results=args.bfcl_results,
        bfcl=BfclEvalConfig(
            categories=categories,  # type: ignore[arg-type]  # checked in BfclEvalConfig
            fmt=OutputFormat(args.fmt),
            model_name=args.model_name,
            partial=args.partial,
            project_root=args.bfcl_project_root,
        ),
        apibank_records=tuple(args.apibank_records),
        apibank_dialogues=tuple(args.apibank_dialogues),
        apibank_results=args.apibank_results,
        apibank_fmt=OutputFormat(args.apibank_format),
        apibank_match=args.apibank_match,
        out=args.out,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 on bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        report = run_eval(config_from_args(args))
    except (ToolRLError, OSError) as exc:
        print(f"megatron-toolrl eval: error: {exc}", file=sys.stderr)
        return 2
    print_report(report)
    if args.out:
        print(f"report written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
