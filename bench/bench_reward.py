"""Reward throughput: our parser + AST checker against bfcl-eval's decoder + checker, same inputs, same run.

The inputs are the agreement test's answer set (tests/bfcl_util.py: agreement_cases: every
accepted answer of BFCL v4 simple_python/multiple/parallel/parallel_multiple plus seeded
perturbations), rendered as model text. Rows:

- python text:   ours `check(text)` vs BFCL `default_decode_ast_prompting` + `ast_checker`.
- decoded calls: ours `check_calls` vs BFCL `ast_checker`, on the same already-decoded calls.
- <fmt> text:    ours `check(text)` for the JSON formats (BFCL has no decoder for them).

Each timing is the best of `--repeat` passes over all inputs; calls/s = answers scored per second.

    .venv/bin/python bench/bench_reward.py [--repeat 3] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from megatron_toolrl.toolcall import OutputFormat, check, check_calls, parse_calls, render_calls
from tests.bfcl_util import (
    AST_CATEGORIES,
    MODEL_DOTS_KEPT,
    agreement_cases,
    bfcl_decode_python,
    load_bfcl,
    load_entries,
    to_bfcl_decoded,
)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _race(ours: Callable[[], object], theirs: Callable[[], object] | None, answers: int,
          repeat: int) -> tuple[float, float | None]:
    """Answers per second of the fastest of `repeat` passes each. The two sides alternate pass by
    pass, so a slow phase of a shared machine hits both."""
    best_ours = best_theirs = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, _seconds(ours))
        if theirs is not None:
            best_theirs = min(best_theirs, _seconds(theirs))
    return answers / best_ours, (answers / best_theirs if theirs is not None else None)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="passes per timing; the fastest counts (default 3)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the numbers here")
    args = parser.parse_args(argv)

    bfcl = load_bfcl()
    entries = [e for category in AST_CATEGORIES for e in load_entries(bfcl, category)]
    cases = agreement_cases(entries)
    texts = {fmt: [render_calls(c.calls, fmt) for c in cases] for fmt in OutputFormat}
    decoded = []
    for text in texts[OutputFormat.HERMES]:
        parsed = parse_calls(text, OutputFormat.HERMES)
        assert parsed.ok, parsed.error
        decoded.append(parsed.calls)
    bfcl_decoded = [to_bfcl_decoded(calls) for calls in decoded]

    def ours_text(fmt: OutputFormat) -> Callable[[], None]:
        def run() -> None:
            for case, text in zip(cases, texts[fmt], strict=True):
                e = case.entry
                check(e.functions, text, e.ground_truth, e.category, fmt)
        return run

    def bfcl_python_text() -> None:
        for case, text in zip(cases, texts[OutputFormat.PYTHON], strict=True):
            e = case.entry
            calls = bfcl_decode_python(bfcl, text)
            if isinstance(calls, Exception):  # a failed decode is BFCL's verdict "invalid"
                continue
            bfcl.ast_checker(e.functions, calls, e.raw_ground_truth, bfcl.python, e.bfcl_category, MODEL_DOTS_KEPT)

    def ours_decoded() -> None:
        for case, calls in zip(cases, decoded, strict=True):
            e = case.entry
            check_calls(e.functions, calls, e.ground_truth, e.category)

    def bfcl_decoded_run() -> None:
        for case, calls in zip(cases, bfcl_decoded, strict=True):
            e = case.entry
            bfcl.ast_checker(e.functions, calls, e.raw_ground_truth, bfcl.python, e.bfcl_category, MODEL_DOTS_KEPT)

    n = len(cases)
    rows = [
        ("python text (decode + check)", *_race(ours_text(OutputFormat.PYTHON), bfcl_python_text, n, args.repeat)),
        ("decoded calls (check only)", *_race(ours_decoded, bfcl_decoded_run, n, args.repeat)),
    ]
    for fmt in (OutputFormat.HERMES, OutputFormat.JSON_LINES, OutputFormat.JSON_LIST):
        rows.append((f"{fmt.value} text (parse + check)", *_race(ours_text(fmt), None, n, args.repeat)))

    print(f"\nreward throughput on {len(cases)} answers (BFCL v4 AST categories), best of {args.repeat}, "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'path':34s} {'ours calls/s':>13s} {'bfcl calls/s':>13s} {'speedup':>8s}")
    for name, ours, theirs in rows:
        bfcl_col = f"{theirs:13,.0f}" if theirs else f"{'n/a':>13s}"
        speed = f"{ours / theirs:7.2f}x" if theirs else f"{'':8s}"
        print(f"{name:34s} {ours:13,.0f} {bfcl_col} {speed}")

    results = {
        "answers": len(cases),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "rows": [{"path": name, "ours_calls_per_s": ours, "bfcl_calls_per_s": theirs,
                  "speedup": (ours / theirs) if theirs else None} for name, ours, theirs in rows],
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
