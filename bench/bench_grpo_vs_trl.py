"""End-to-end GRPO step: megatron_toolrl's trainer vs TRL's GRPOTrainer on SmolLM2-135M-Instruct.

    .venv/bin/python bench/bench_grpo_vs_trl.py [--prompts 4] [--group 8] [--max-new-tokens 48]
        [--micro-batch 4] [--reps 3] [--warmup 1] [--json out.json]

Both sides do the same work per step: the same prompts (our synthetic tool tasks rendered by our
prompt renderer, in the order our sampler draws them), `--group` sampled completions per prompt at
temperature 1 up to `--max-new-tokens` tokens, the same reward (our `RewardFn`, wrapped as a TRL
reward function), group-normalised advantages, the clipped token-mean loss (TRL's "dapo"), no KL,
AdamW with the same hyper-parameters and gradient clipping, one optimizer step on all completions
in micro-batches of `--micro-batch`, bf16 compute with fp32 master weights.

- ours: `megatron_toolrl.train.grpo_step.grpo_step` on a run built by `train.run.build_run` from
  examples/quickstart_cpu.yaml (+ overrides below): in-process vLLM rollouts, megatron-core policy,
  weight push (with its logprob probe check) after every step. The split is the step's own
  metrics: rollout/seconds (generation + reward), time/logprobs, time/update, time/sync.
- TRL: `trl.GRPOTrainer` with transformers generation (its vLLM colocate mode pushes weights with
  `model.load_weights`, which CPU vLLM does not support, see docs). Generation = its
  `_generate_and_score_completions` (generation + reward + advantages) minus old-logprob passes
  (none when on-policy, as here); sync = 0 (it samples with the training model itself).

The two alternate step by step in one process (TRL, ours, TRL, ours, ...; our step runs in a TRL
callback between TRL's optimizer steps) so that background load hits both alike; medians of
`--reps` steps after `--warmup` untimed ones. Peak memory: each side alone in a child process,
one step, its peak RSS (`--no-memory` skips it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # runnable from a checkout without `pip install -e .`
sys.path.insert(0, str(REPO / "bench"))

import torch  # noqa: E402

from peak_memory import gib, peak_bytes, reset_peak, rss_bytes  # noqa: E402

STAGES = ("generation_s", "logprobs_s", "update_s", "sync_s")


# ---------------------------------------------------------------------------- our side


def our_config(args: argparse.Namespace, run_dir: Path, extra_overrides: list[str] = ()):
    """The quickstart recipe with the bench's sizes, no SFT/eval/hard-sample demos (those would
    change the prompts between steps, and TRL has no equivalent) and nothing written but metrics."""
    from megatron_toolrl.config import load_config
    from megatron_toolrl.train.config import TrainConfig

    overrides = [
        "mode=grpo", "hard_sampling.enabled=false", "sft.steps=0", "eval.at_start=false", "eval.at_end=false",
        "guard.enabled=false", "metrics.tensorboard=false", "metrics.plot=false",
        f"hf_dir={args.hf_dir}", f"steps={args.warmup + args.reps}",
        f"grpo.prompts_per_step={args.prompts}", f"grpo.group_size={args.group}",
        f"grpo.micro_batch_size={args.micro_batch}", f"rollout.max_new_tokens={args.max_new_tokens}",
        f"prompt.base_shots={args.shots}",
        f"metrics.dir={run_dir}", f"checkpoint.dir={run_dir / 'checkpoints'}", *extra_overrides,
    ]
    return load_config(TrainConfig, args.recipe, overrides)


class OurSide:
    """A run built by the real trainer code; `step()` is one `grpo_step`."""

    def __init__(self, args: argparse.Namespace, run_dir: Path, extra_overrides: list[str] = ()):
        from megatron_toolrl.parallel import init_parallel
        from megatron_toolrl.train.run import build_run, push_weights

        self.cfg = our_config(args, run_dir, extra_overrides)
        init_parallel(self.cfg.model.parallel, seed=self.cfg.seed)
        self.run = build_run(self.cfg, self.cfg.hf_dir)
        push_weights(self.run, verify=True)  # as loop.train does before step 1
        self.steps_done = 0

    def planned_prompt_rows(self, steps: int) -> list[dict]:
        """The prompts of our next `steps` steps, in order: a copy of the run's sampler draws the
        task indices and each is rendered as grpo_step's collect_rollouts renders it (no hard-
        sample pool here, so every prompt gets prompt.base_shots demonstrations)."""
        import random
        from copy import deepcopy

        sampler = deepcopy(self.run.sampler)
        rows = []
        for step in range(self.steps_done + 1, self.steps_done + steps + 1):
            for index in sampler.next_batch():
                task = self.run.tasks[index]
                rng = random.Random(f"{self.cfg.seed}-{step}-0-{task.id}")  # as collect_rollouts seeds it
                rows.append({"prompt": self.run.prompt_text(task, self.cfg.prompt.base_shots, rng), "task_index": index})
        return rows

    def step(self) -> dict[str, float]:
        from megatron_toolrl.train.grpo_step import grpo_step

        self.steps_done += 1
        before = rss_bytes()
        reset_peak()
        started = time.perf_counter()
        m = grpo_step(self.run, self.steps_done)
        seconds = time.perf_counter() - started
        rows = self.cfg.grpo.prompts_per_step * self.cfg.grpo.group_size
        return {
            "step_s": seconds,
            "generation_s": m["rollout/seconds"],
            "logprobs_s": m["time/logprobs"],
            "update_s": m["time/update"],
            "sync_s": m["time/sync"],
            "completion_tokens": m["rollout/response_tokens_mean"] * rows,
            "reward_mean": m["reward/mean"],
            "step_peak_above_rss_gib": gib(peak_bytes() - before),
        }

    def close(self) -> None:
        self.run.engine.close()
        self.run.metrics.close()


# ---------------------------------------------------------------------------- TRL side


def trl_reward(cfg, tasks: list):
    """Our reward as a TRL reward function: the dataset's `task_index` column names the task."""
    from megatron_toolrl.rewards import RewardFn

    reward_fn = RewardFn(cfg.reward)  # its own instance: no state shared with our run
    fmt = cfg.prompt.format

    def tool_call_reward(prompts: list[str], completions: list[str], task_index: list[int], **_: Any) -> list[float]:
        return reward_fn.compute_rewards([tasks[i] for i in task_index], completions, 0, fmt, update_trigger=False).rewards

    return tool_call_reward


class TrlTimer:
    """Wall time of TRL's stages and its mean reward, taken by wrapping three of the trainer's
    methods on this instance (they only record; arguments and results pass through unchanged)."""

    def __init__(self, trainer: Any):
        self.reset()
        generate_and_score = trainer._generate_and_score_completions
        logps = trainer._get_per_token_logps_and_entropies
        rewards = trainer._calculate_rewards

        def recorded_rewards(*a: Any, **k: Any) -> Any:
            out = rewards(*a, **k)  # (completions, reward functions)
            self.reward_mean = float(out.sum(dim=1).mean())
            return out

        def timed_generate_and_score(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            out = generate_and_score(*a, **k)
            self.rollout_s += time.perf_counter() - started
            self.completion_tokens += int(out["completion_mask"].sum())
            return out

        def timed_logps(*a: Any, **k: Any) -> Any:
            if torch.is_grad_enabled():  # the loss's own forward: part of the update
                return logps(*a, **k)
            started = time.perf_counter()
            out = logps(*a, **k)
            self.logprobs_s += time.perf_counter() - started
            return out

        trainer._generate_and_score_completions = timed_generate_and_score
        trainer._get_per_token_logps_and_entropies = timed_logps
        trainer._calculate_rewards = recorded_rewards

    def reset(self) -> None:
        self.rollout_s = self.logprobs_s = 0.0
        self.completion_tokens = 0
        self.reward_mean = float("nan")


def build_trl(cfg, tasks: list, prompt_rows: list[dict], trl_gc: bool, out_dir: Path, callback_cls: type):
    """A GRPOTrainer configured like our run `cfg`, on `prompt_rows` ({"prompt", "task_index"}, in
    step order: TRL's sampler is told not to shuffle), for len(prompt_rows) / prompts_per_step steps."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    tok = AutoTokenizer.from_pretrained(cfg.hf_dir)
    for row in prompt_rows:
        # TRL tokenizes plain-text prompts with the tokenizer's defaults; our trainer adds no
        # special tokens (the chat template wrote them): the ids must agree or the work differs.
        if tok(row["prompt"])["input_ids"] != tok(row["prompt"], add_special_tokens=False)["input_ids"]:
            raise RuntimeError("TRL would tokenize the prompts differently from our trainer")
    loss, opt, grpo = cfg.grpo.loss, cfg.optimizer, cfg.grpo
    rows = grpo.prompts_per_step * grpo.group_size
    trl_args = GRPOConfig(
        output_dir=str(out_dir), report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
        use_cpu=True, seed=cfg.seed, max_steps=len(prompt_rows) // grpo.prompts_per_step, shuffle_dataset=False,
        dataloader_num_workers=0,
        # One optimizer step per generation batch of prompts x group, in micro-batches like ours.
        per_device_train_batch_size=grpo.micro_batch_size, gradient_accumulation_steps=rows // grpo.micro_batch_size,
        num_generations=grpo.group_size, num_iterations=1,
        max_completion_length=cfg.rollout.max_new_tokens,
        temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p, top_k=0,
        beta=loss.kl_coef, epsilon=loss.eps_low, epsilon_high=loss.eps_high, loss_type="dapo",
        scale_rewards="group", mask_truncated_completions=False,
        learning_rate=opt.lr, weight_decay=opt.weight_decay, adam_beta1=opt.adam_beta1, adam_beta2=opt.adam_beta2,
        adam_epsilon=opt.adam_eps, max_grad_norm=opt.clip_grad, lr_scheduler_type="constant", warmup_steps=0,
        # fp32 weights + bf16 autocast: the same precision recipe as our bf16 params + fp32 master copies.
        bf16=cfg.model.precision.params_dtype == "bf16",
        gradient_checkpointing=trl_gc,
    )
    model = AutoModelForCausalLM.from_pretrained(cfg.hf_dir, dtype=torch.float32)
    trainer = GRPOTrainer(model=model, reward_funcs=trl_reward(cfg, tasks), args=trl_args,
                          train_dataset=Dataset.from_list(prompt_rows), processing_class=tok)
    trainer.add_callback(callback_cls(TrlTimer(trainer)))
    return trainer


def make_callback(on_trl_step, between):
    """A TrainerCallback class that times each TRL optimizer step and then calls `between()`."""
    from transformers import TrainerCallback

    class Interleave(TrainerCallback):
        def __init__(self, timer: TrlTimer):
            self.timer = timer

        def on_step_begin(self, args, state, control, **kwargs):
            self.timer.reset()
            self.rss_before = rss_bytes()
            reset_peak()
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            seconds = time.perf_counter() - self.started
            t = self.timer
            on_trl_step({
                "step_s": seconds,
                "generation_s": t.rollout_s - t.logprobs_s,
                "logprobs_s": t.logprobs_s,
                "update_s": seconds - t.rollout_s,
                "sync_s": 0.0,
                "completion_tokens": float(t.completion_tokens),
                "reward_mean": t.reward_mean,
                "step_peak_above_rss_gib": gib(peak_bytes() - self.rss_before),
            })
            between()

    return Interleave


# ---------------------------------------------------------------------------- runs


def run_interleaved(args: argparse.Namespace, work: Path) -> tuple[dict[str, list[dict]], list[dict]]:
    """(per-step rows of each side, the prompt rows both trained on)."""
    ours = OurSide(args, work / "ours")
    prompt_rows = ours.planned_prompt_rows(args.warmup + args.reps)
    runs: dict[str, list[dict]] = {"ours": [], "trl": []}

    def on_trl(row: dict) -> None:
        runs["trl"].append(row)
        print(f"  step {len(runs['trl'])} trl  {row['step_s']:7.2f} s", file=sys.stderr, flush=True)

    def our_step() -> None:
        row = ours.step()
        runs["ours"].append(row)
        print(f"  step {len(runs['ours'])} ours {row['step_s']:7.2f} s", file=sys.stderr, flush=True)

    trainer = build_trl(ours.cfg, ours.run.tasks, prompt_rows, args.trl_gradient_checkpointing, work / "trl",
                        make_callback(on_trl, our_step))
    try:
        trainer.train()
    finally:
        ours.close()
    return runs, prompt_rows


def run_one_side(args: argparse.Namespace, work: Path) -> dict:
    """One side alone, for its peak RSS (`--side ours|trl`); TRL's prompts come from `--prompt-rows`."""
    rows: list[dict] = []
    if args.side == "ours":
        ours = OurSide(args, work / "ours")
        for _ in range(args.warmup + args.reps):
            rows.append(ours.step())
        ours.close()
    else:
        from megatron_toolrl.train.run import load_tasks

        cfg = our_config(args, work / "ours")
        tasks, _ = load_tasks(cfg)  # the same seeded synthetic tasks, no model built
        prompt_rows = json.loads(args.prompt_rows.read_text())[: (args.warmup + args.reps) * args.prompts]
        trainer = build_trl(cfg, tasks, prompt_rows, args.trl_gradient_checkpointing, work / "trl",
                            make_callback(rows.append, lambda: None))
        trainer.train()
    return {"side": args.side, "rows": rows, "peak_rss_gib": gib(peak_bytes())}


def isolated_peak(args: argparse.Namespace, side: str, prompt_rows: list[dict]) -> dict:
    """Run one step of `side` alone in a child process; its lifetime peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out, rows_file = Path(tmp) / "side.json", Path(tmp) / "prompts.json"
        rows_file.write_text(json.dumps(prompt_rows))
        cmd = [sys.executable, __file__, "--side", side, "--reps", "1", "--warmup", "0", "--no-memory",
               "--prompts", str(args.prompts), "--group", str(args.group), "--max-new-tokens", str(args.max_new_tokens),
               "--micro-batch", str(args.micro_batch), "--shots", str(args.shots), "--hf-dir", args.hf_dir,
               "--recipe", str(args.recipe), "--prompt-rows", str(rows_file), "--json", str(out)]
        if args.trl_gradient_checkpointing:
            cmd.append("--trl-gradient-checkpointing")
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


def summarize(runs: dict[str, list[dict]], warmup: int) -> dict[str, dict[str, float]]:
    out = {}
    for side, rows in runs.items():
        timed = rows[warmup:]
        med = {k: statistics.median(r[k] for r in timed) for k in ("step_s", *STAGES, "completion_tokens", "reward_mean")}
        med["step_peak_above_rss_gib"] = max(r["step_peak_above_rss_gib"] for r in timed)
        med["completion_tokens_per_s"] = med["completion_tokens"] / med["step_s"]
        out[side] = med
    return out


def show(args: argparse.Namespace, med: dict[str, dict[str, float]], memory: dict[str, float]) -> None:
    print(f"\nGRPO step, SmolLM2-135M-Instruct, {args.prompts} prompts x {args.group} completions x <= "
          f"{args.max_new_tokens} new tokens, micro-batch {args.micro_batch}, bf16; median of {args.reps} "
          f"(after {args.warmup} warm-up), sides alternating; {platform.machine()}, {torch.get_num_threads()} threads")
    cols = ("step_s", *STAGES, "completion_tokens", "reward_mean", "step_peak_above_rss_gib")
    heads = ("s/step", "generation", "logprobs", "update", "sync", "compl. tokens", "mean reward", "step peak GiB")
    print(f"{'':10s}" + "".join(f"{h:>14s}" for h in heads) + f"{'peak RSS GiB':>14s}")
    for side in ("ours", "trl"):
        m = med[side]
        mem = memory.get(side)
        print(f"{side:10s}" + "".join(f"{m[c]:14.2f}" for c in cols) + (f"{mem:14.2f}" if mem else f"{'-':>14s}"))
    print(f"speed-up (TRL s/step / ours): {med['trl']['step_s'] / med['ours']['step_s']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hf-dir", default=str(REPO / "artifacts" / "smollm2-135m-instruct"))
    p.add_argument("--recipe", type=Path, default=REPO / "examples" / "quickstart_cpu.yaml")
    p.add_argument("--prompts", type=int, default=4, help="prompts per step")
    p.add_argument("--group", type=int, default=8, help="completions per prompt (GRPO's G)")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--micro-batch", type=int, default=4, help="sequences per forward/backward on both sides")
    p.add_argument("--shots", type=int, default=0, help="demonstrations in every prompt (prompt.base_shots)")
    p.add_argument("--reps", type=int, default=3, help="timed steps per side (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per side first")
    p.add_argument("--trl-gradient-checkpointing", action="store_true",
                   help="TRL's own default; off by default here because it only adds recompute at this size")
    p.add_argument("--side", choices=("both", "ours", "trl"), default="both", help=argparse.SUPPRESS)
    p.add_argument("--no-memory", action="store_true", help="skip the per-side peak-RSS child processes")
    p.add_argument("--prompt-rows", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if (args.prompts * args.group) % args.micro_batch:
        p.error("prompts x group must be a multiple of --micro-batch")
    if args.side == "both" and args.reps < 3:
        p.error("--reps must be >= 3 for a meaningful median")
    if args.side == "trl" and args.prompt_rows is None:
        p.error("--side trl needs --prompt-rows")
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    with tempfile.TemporaryDirectory(prefix="bench-grpo-") as tmp:
        if args.side != "both":
            result = run_one_side(args, Path(tmp))
            if args.json:
                args.json.write_text(json.dumps(result, indent=2))
            print(json.dumps({"side": args.side, "peak_rss_gib": result["peak_rss_gib"]}))
            return 0
        runs, prompt_rows = run_interleaved(args, Path(tmp))
    med = summarize(runs, args.warmup)
    memory = {} if args.no_memory else {side: isolated_peak(args, side, prompt_rows)["peak_rss_gib"] for side in ("ours", "trl")}
    show(args, med, memory)
    if args.json:
        import trl

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "config": {"prompts": args.prompts, "group": args.group, "max_new_tokens": args.max_new_tokens,
                       "micro_batch": args.micro_batch, "shots": args.shots, "reps": args.reps, "warmup": args.warmup,
                       "trl_gradient_checkpointing": args.trl_gradient_checkpointing, "threads": torch.get_num_threads()},
            "trl_version": trl.__version__,
            "runs": runs, "median": med, "peak_rss_gib": memory,
            "speedup": med["trl"]["step_s"] / med["ours"]["step_s"],
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
