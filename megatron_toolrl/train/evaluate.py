"""Held-out evaluation with greedy decoding: synthetic tasks (our BFCL-semantics checker) and a
fixed BFCL subset (bfcl-eval's own decoder and checker)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.rollout.types import SamplingSettings
from megatron_toolrl.toolcall import check
from megatron_toolrl.train.run import Run

GREEDY_SEED = 0


def _greedy(run: Run, tasks: list[ToolTask]) -> list[str]:
    prompts = [run.prompt_ids(run.prompt_text(t, run.cfg.prompt.base_shots, random.Random(GREEDY_SEED))) for t in tasks]
    sampling = SamplingSettings(n=1, temperature=0.0, max_tokens=run.cfg.eval.max_new_tokens, seed=GREEDY_SEED,
                                logprobs=False)
    return [group[0].text for group in run.engine.generate(prompts, sampling)]


def evaluate_held_out(run: Run) -> dict[str, float]:
    """Accuracy (strict AST check) on the held-out tasks, overall and per category. Driver only."""
    if not run.eval_tasks:
        return {}
    texts = _greedy(run, run.eval_tasks)
    fmt = run.cfg.prompt.format
    per_cat: Counter[str] = Counter()
    right: Counter[str] = Counter()
    well_formed = 0
    for task, text in zip(run.eval_tasks, texts):
        result = check(task.tools, text, task.ground_truth, task.category, fmt)
        per_cat[task.category] += 1
        right[task.category] += int(result.valid)
        # A call task answered with at least one well-formed call (right or wrong).
        well_formed += int(task.category != "irrelevance" and result.parse is not None and result.parse.ok
                           and bool(result.parse.calls))
    call_tasks = sum(1 for t in run.eval_tasks if t.category != "irrelevance")
    out = {"eval/heldout_accuracy": sum(right.values()) / len(run.eval_tasks),
           "eval/heldout_well_formed": well_formed / max(call_tasks, 1)}
    out.update({f"eval/heldout_{cat}": right[cat] / per_cat[cat] for cat in per_cat})
    samples_path = run.run_dir / "eval_samples.jsonl"
    samples_path.parent.mkdir(parents=True, exist_ok=True)
    with samples_path.open("a") as f:
        for task, text in list(zip(run.eval_tasks, texts))[:10]:
            f.write(json.dumps({"id": task.id, "text": text}) + "\n")
    return out


def evaluate_bfcl(run: Run, tag: str) -> dict[str, float]:
    """Accuracy on the first `bfcl_per_category` entries of each configured BFCL category,
    scored by bfcl-eval's checker; writes the full report next to the metrics. Driver only."""
    cfg = run.cfg.eval
    if not cfg.bfcl_categories:
        return {}
    from megatron_toolrl.data.bfcl import load_bfcl_category
    from megatron_toolrl.eval.bfcl import BfclEvalConfig, evaluate

    out: dict[str, float] = {}
    results: dict[str, str] = {}
    for category in cfg.bfcl_categories:
        tasks, _ = load_bfcl_category(category)
        tasks = sorted(tasks, key=lambda t: int(t.id.rsplit("_", 1)[-1]))[: cfg.bfcl_per_category]
        results.update(zip([t.id for t in tasks], _greedy(run, tasks)))
    report = evaluate(results, BfclEvalConfig(categories=tuple(cfg.bfcl_categories), fmt=run.cfg.prompt.format, partial=True))
    data = report.to_json()
    path = Path(run.run_dir) / f"bfcl_{tag}.json"
    path.write_text(json.dumps(data, indent=2))
    for name, cat in data["categories"].items():
        out[f"eval/bfcl_{name}"] = cat["accuracy"]
    out["eval/bfcl_accuracy"] = data["summary"]["micro_accuracy"]
    return out
