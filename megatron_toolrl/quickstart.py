"""`megatron-toolrl quickstart`: the CPU job of the README.

Runs examples/quickstart_cpu.yaml (ToolExpander-mode GRPO on SmolLM2-135M-Instruct: a short SFT
warm start, then GRPO with hard-sample few-shot substitution, in-process vLLM rollouts and a
checked weight push every step), then prints held-out synthetic and BFCL accuracy before and
after, and where the curves and metrics are.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from megatron_toolrl.config import load_config
from megatron_toolrl.errors import ToolRLError

DEFAULT_RECIPE = Path(__file__).resolve().parents[1] / "examples" / "quickstart_cpu.yaml"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def print_table(summary: dict, console: Console) -> None:
    table = Table(title=f"SmolLM2-135M-Instruct, {summary['mode']} mode, {summary['steps']} GRPO steps")
    table.add_column("evaluation (greedy)")
    table.add_column("before (released model)", justify="right")
    table.add_column("after SFT warm start", justify="right")
    table.add_column("after GRPO", justify="right")
    table.add_row("held-out synthetic tasks (strict AST)", _pct(summary["heldout_accuracy_before"]),
                  _pct(summary.get("heldout_accuracy_after_sft")), _pct(summary["heldout_accuracy_after"]))
    table.add_row("BFCL subset (bfcl-eval checker)", _pct(summary["bfcl_accuracy_before"]),
                  _pct(summary.get("bfcl_accuracy_after_sft")), _pct(summary["bfcl_accuracy_after"]))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="megatron-toolrl quickstart", description=__doc__.splitlines()[0])
    parser.add_argument("--hf-dir", default=None, help="SmolLM2 HF directory (default: the recipe's hf_dir)")
    parser.add_argument("--config", default=str(DEFAULT_RECIPE), help="recipe YAML (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the recipe")
    args = parser.parse_args(argv)
    from megatron_toolrl.train.config import TrainConfig
    from megatron_toolrl.train.loop import train

    overrides = list(args.overrides) + ([f"hf_dir={args.hf_dir}"] if args.hf_dir else [])
    try:
        cfg = load_config(TrainConfig, args.config, overrides)
    except ToolRLError as err:
        print(f"megatron-toolrl quickstart: {err}", file=sys.stderr)
        return 2
    console = Console()
    started = time.perf_counter()
    summary = train(cfg)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print_table(summary, console)
    run_dir = Path(summary["run_dir"])
    console.print(f"metrics: {run_dir / 'metrics.jsonl'}  curves: {run_dir / 'curves.png'}  "
                  f"tensorboard: {run_dir / 'tensorboard'}  checkpoint: {summary['checkpoint']}")
    print(json.dumps(summary))
    return 0
