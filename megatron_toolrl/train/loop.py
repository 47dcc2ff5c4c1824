"""The training loop: set up, (resume), evaluate, GRPO steps with checkpoints, evaluate, report.

`megatron-toolrl train CONFIG [key=value ...]` runs `train`; the run ends by printing one JSON
line summarising it. Exit code 124 means "preempted, checkpoint saved" (SLURM requeues on it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from megatron_toolrl.config import load_config, to_dict
from megatron_toolrl.errors import ToolRLError
from megatron_toolrl.parallel import destroy_parallel, init_parallel
from megatron_toolrl.train.config import TrainConfig
from megatron_toolrl.train.evaluate import evaluate_bfcl, evaluate_held_out
from megatron_toolrl.train.grpo_step import grpo_step
from megatron_toolrl.train.metrics import plot_metrics
from megatron_toolrl.train.run import Run, broadcast_object, build_run, is_driver, push_weights
from megatron_toolrl.train.signals import EXIT_CODE_PREEMPTED, StopRequest
from megatron_toolrl.train.state import CollapseGuard, latest_step, restore, save


def evaluate(run: Run, tag: str) -> dict[str, float]:
    out = {**evaluate_held_out(run), **evaluate_bfcl(run, tag)} if is_driver() else {}
    return broadcast_object(out)


def train(cfg: TrainConfig) -> dict:
    """Run `cfg` to the end (or to a preemption); returns the summary printed as the last line."""
    init_parallel(cfg.model.parallel, seed=cfg.seed)
    resume_from = latest_step(cfg.checkpoint) if cfg.checkpoint.resume else None
    initial_weights: object = cfg.hf_dir
    if cfg.sft.steps and resume_from is None:
        from transformers import AutoTokenizer

        from megatron_toolrl.models import arch_from_hf
        from megatron_toolrl.train.sft import run_sft

        initial_weights = run_sft(cfg, arch_from_hf(cfg.hf_dir), AutoTokenizer.from_pretrained(cfg.hf_dir), cfg.hf_dir)
    run = build_run(cfg, initial_weights)
    guard = CollapseGuard(cfg.guard)
    start = restore(run, resume_from, guard) if resume_from is not None else 0
    if resume_from is not None and is_driver():
        print(f"[resume] from step {start} of {cfg.checkpoint.dir}", flush=True)
    if resume_from is not None:
        run.metrics.truncate_after(start)
    elif (earlier := run.metrics.set_aside()) is not None:
        print(f"[metrics] {run.metrics.path} held an earlier run's metrics: kept as {earlier.name}", flush=True)
    if is_driver():
        (run.run_dir / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    # The engine starts from the HF dir: evaluating now scores the model as released, before any
    # SFT warm start; after the push it samples from exactly the policy's weights.
    before = evaluate(run, "before") if start == 0 and cfg.eval.at_start else {}
    push_weights(run, verify=True)
    if before and cfg.sft.steps:
        before.update({f"{k}_after_sft": v for k, v in evaluate(run, "after_sft").items()})
    if before:
        run.metrics.log(0, before)
    stop, last_saved, preempted, step = StopRequest(), resume_from, False, start
    progress = Progress(TextColumn("[bold]GRPO"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                        TimeElapsedColumn(), TimeRemainingColumn(), disable=not is_driver())
    with progress:
        bar = progress.add_task("grpo", total=cfg.steps, completed=start, status="")
        for step in range(start + 1, cfg.steps + 1):
            metrics = grpo_step(run, step)
            reason = guard.check(metrics)
            if reason and last_saved is not None and guard.rollbacks < cfg.guard.max_rollbacks:
                rollbacks = guard.rollbacks + 1
                restore(run, last_saved, guard)
                guard.rollbacks = rollbacks
                run.policy.scheduler.peak_lr *= cfg.guard.lr_factor
                push_weights(run, verify=True)
                metrics.update({"guard/rollback": 1.0, "guard/rolled_back_to": float(last_saved)})
                if is_driver():
                    print(f"[guard] step {step}: {reason}; rolled back to step {last_saved}, "
                          f"lr x{cfg.guard.lr_factor} (rollback {rollbacks})", file=sys.stderr)
            if cfg.eval.interval and step % cfg.eval.interval == 0 and step != cfg.steps:
                metrics.update(evaluate(run, f"step{step}"))
            run.metrics.log(step, metrics)
            status = (f"reward {metrics.get('reward/mean', float('nan')):.3f} correct {metrics.get('reward/correct', float('nan')):.2f} "
                      f"pool {int(metrics.get('pool/in_pool', 0))}")
            progress.update(bar, completed=step, status=status)
            if is_driver() and not progress.console.is_terminal:
                # Logs (CI, SLURM) get one plain line per step; a terminal gets the live bar.
                print(f"[grpo] step {step}/{cfg.steps} {status}", file=sys.stderr, flush=True)
            preempted = stop.should_stop()
            if preempted or step == cfg.steps or (cfg.checkpoint.interval and step % cfg.checkpoint.interval == 0):
                save(run, step, guard)
                last_saved = step
            if preempted:
                break
    stop.restore()
    after = evaluate(run, "after") if cfg.eval.at_end and not preempted else {}
    if after:
        run.metrics.log(step, after)
    summary = summarize(run, step, before, after, preempted)
    if is_driver():
        if cfg.metrics.plot:
            plot_metrics(run.run_dir / "metrics.jsonl", run.run_dir / "curves.png", title=f"{cfg.mode} on {Path(cfg.hf_dir).name}")
        (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        run.engine.close()
    run.metrics.close()
    return summary


def summarize(run: Run, step: int, before: dict, after: dict, preempted: bool) -> dict:
    from megatron_toolrl.train.metrics import read_metrics

    rows = [r for r in read_metrics(run.run_dir / "metrics.jsonl") if "reward/mean" in r] if is_driver() else []
    last = rows[-1] if rows else {}
    return {
        "mode": run.cfg.mode,
        "steps": step,
        "preempted": preempted,
        "final_reward": last.get("reward/mean"),
        "final_correct_rate": last.get("reward/correct"),
        "heldout_accuracy_before": before.get("eval/heldout_accuracy"),
        "heldout_accuracy_after_sft": before.get("eval/heldout_accuracy_after_sft"),
        "heldout_accuracy_after": after.get("eval/heldout_accuracy"),
        "bfcl_accuracy_before": before.get("eval/bfcl_accuracy"),
        "bfcl_accuracy_after_sft": before.get("eval/bfcl_accuracy_after_sft"),
        "bfcl_accuracy_after": after.get("eval/bfcl_accuracy"),
        "pool": {k: v for k, v in last.items() if k.startswith("pool/")},
        "checkpoint": str(Path(run.cfg.checkpoint.dir) / f"step_{step}"),
        "run_dir": str(run.run_dir),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print("usage: megatron-toolrl train CONFIG.yaml [key=value ...]", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        cfg = load_config(TrainConfig, argv[0], argv[1:])
        summary = train(cfg)
    except ToolRLError as err:
        # Bad config, data or checkpoint, found before or during set-up: a message, not a traceback.
        print(f"megatron-toolrl train: {err}", file=sys.stderr)
        destroy_parallel()
        return 2
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if is_driver():
        print(json.dumps(summary))
    destroy_parallel()
    return EXIT_CODE_PREEMPTED if summary["preempted"] else 0
