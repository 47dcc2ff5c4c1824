"""Where our GRPO step's trainer time goes, and what each speed-up bought, on one real batch.

    .venv/bin/python bench/profile_grpo_update.py [--prompts 4] [--group 8] [--max-new-tokens 48]
        [--micro-batch 4] [--reps 2] [--top 12] [--trace trace.json] [--json out.json]

Builds the run exactly as bench_grpo_vs_trl.py does (the quickstart recipe at the bench's sizes),
samples one step's rollouts with the real engine, and then times the trainer's two stages on that
same token batch (old logprobs, policy update) under each configuration below, cumulatively:

    baseline            LM head over every position; separate old-logprob forward pass
    response_head       + LM head (and log-softmax) only from each micro-batch's first response
                          position (MegatronPolicy.response_logits_only)
    no_old_logprob_pass + skip the old-logprob pass for a single on-policy update
                          (grpo.recompute_old_logprobs=false): old = current logprobs, detached
    sdpa_attention      + torch's fused scaled_dot_product_attention as the local spec's core
                          attention instead of megatron's unfused DotProductAttention
                          (model.local_attention=sdpa, the default)

Configurations alternate within each repetition (A-B-C-A-B-C) so background load hits all alike;
the table gives medians. Then torch.profiler records one update of the first and the last
configuration and prints the top operators by self CPU time (`--trace` also writes a Chrome
trace of the last). The optimizer really steps each time; the work per step does not depend on
the weights, so the timings are comparable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import torch  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    response_logits_only: bool
    old_logprob_pass: bool
    sdpa: bool


VARIANTS = (
    Variant("baseline", response_logits_only=False, old_logprob_pass=True, sdpa=False),
    Variant("response_head", response_logits_only=True, old_logprob_pass=True, sdpa=False),
    Variant("no_old_logprob_pass", response_logits_only=True, old_logprob_pass=False, sdpa=False),
    Variant("sdpa_attention", response_logits_only=True, old_logprob_pass=False, sdpa=True),
)


def set_core_attention(policy, sdpa: bool) -> None:
    """Switch every layer's core attention between megatron's unfused forward and SDPA. The run
    is built with the unfused class; SDPADotProductAttention is a subclass that adds no state and
    only replaces forward, so swapping the class of the live modules is the same as rebuilding."""
    from megatron.core.transformer.dot_product_attention import DotProductAttention

    from megatron_toolrl.models.sdpa_attention import SDPADotProductAttention

    for chunk in policy.chunks:
        for module in chunk.modules():
            if isinstance(module, DotProductAttention):
                module.__class__ = SDPADotProductAttention if sdpa else DotProductAttention


def one_batch(ours) -> "TokenBatch":  # noqa: F821
    """One step's rollouts from the real engine, as grpo_step turns them into a token batch."""
    from megatron_toolrl.train.grpo_step import collect_rollouts, token_batch

    rollouts = collect_rollouts(ours.run, 1)
    return token_batch(rollouts.prompt_ids, rollouts.completions, rollouts.advantages,
                       pad_id=ours.run.tokenizer.pad_token_id or 0)


def trainer_stages(ours, batch, variant: Variant) -> dict[str, float]:
    """grpo_step's stages 5 and 6 (old logprobs, one optimizer step) under `variant`."""
    from megatron_toolrl.grpo.loss import policy_loss

    policy, loss_cfg = ours.run.policy, ours.cfg.grpo.loss
    policy.response_logits_only = variant.response_logits_only
    set_core_attention(policy, variant.sdpa)
    started = time.perf_counter()
    batch.old_logprobs = policy.compute_logprobs(batch, masked_only=True) if variant.old_logprob_pass else None
    logprobs_s = time.perf_counter() - started

    def loss_fn(logprobs, entropy, mb, counts):
        old = logprobs.detach() if mb.old_logprobs is None else mb.old_logprobs
        loss, parts = policy_loss(logprobs, old, mb.advantages, mb.loss_mask, loss_cfg,
                                  num_tokens=counts.tokens, num_seqs=counts.sequences)
        return loss, {}

    started = time.perf_counter()
    policy.train_step(batch, loss_fn)
    return {"logprobs_s": logprobs_s, "update_s": time.perf_counter() - started}


def profile_update(ours, batch, variant: Variant, top: int, trace: Path | None) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer_stages(ours, batch, variant)
    if trace is not None:
        prof.export_chrome_trace(str(trace))
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


def main(argv: list[str] | None = None) -> int:
    from bench_grpo_vs_trl import OurSide

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hf-dir", default=str(REPO / "artifacts" / "smollm2-135m-instruct"))
    p.add_argument("--recipe", type=Path, default=REPO / "examples" / "quickstart_cpu.yaml")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--micro-batch", type=int, default=4)
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--reps", type=int, default=2, help="timed repetitions of every configuration")
    p.add_argument("--top", type=int, default=12, help="operators to list per profile")
    p.add_argument("--no-profile", action="store_true", help="timings only, no torch.profiler tables")
    p.add_argument("--trace", type=Path, default=None, help="Chrome trace of the last configuration's update")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.warmup = 0  # OurSide's recipe runs warmup + reps steps; here one step's rollouts
    warnings.filterwarnings("ignore")

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        ours = OurSide(argparse.Namespace(**{**vars(args), "reps": 1}), Path(tmp), ["model.local_attention=unfused"])
        try:
            batch = one_batch(ours)
            mask = batch.loss_mask
            shape = {"sequences": batch.num_sequences, "seq_len": batch.seq_len,
                     "response_tokens": int(mask.sum()),
                     "first_response_position_min": int((mask != 0).float().argmax(dim=1).min())}
            print(f"batch: {shape}", flush=True)
            trainer_stages(ours, batch, VARIANTS[0])  # warm-up: first-call allocations
            times: dict[str, list[dict[str, float]]] = {v.name: [] for v in VARIANTS}
            for rep in range(args.reps):
                for variant in VARIANTS:
                    row = trainer_stages(ours, batch, variant)
                    times[variant.name].append(row)
                    print(f"rep {rep + 1}/{args.reps} {variant.name:20s} logprobs {row['logprobs_s']:6.2f} s  "
                          f"update {row['update_s']:6.2f} s", flush=True)
            profiles = {}
            if not args.no_profile:
                for variant in (VARIANTS[0], VARIANTS[-1]):
                    trace = args.trace if variant is VARIANTS[-1] else None
                    profiles[variant.name] = profile_update(ours, batch, variant, args.top, trace)
        finally:
            ours.close()  # after the trainer work: closing the in-process engine tears down parallel state

    median = {name: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for name, rows in times.items()}
    base = median[VARIANTS[0].name]
    base_total = base["logprobs_s"] + base["update_s"]
    print(f"\nTrainer stages of one GRPO step on the same batch ({shape['sequences']} sequences x "
          f"{shape['seq_len']} tokens, {shape['response_tokens']} response tokens), median of {args.reps}, "
          f"{torch.get_num_threads()} threads:")
    print(f"{'configuration':22s}{'logprobs s':>12s}{'update s':>10s}{'total s':>9s}{'vs baseline':>13s}")
    for variant in VARIANTS:
        m = median[variant.name]
        total = m["logprobs_s"] + m["update_s"]
        print(f"{variant.name:22s}{m['logprobs_s']:12.2f}{m['update_s']:10.2f}{total:9.2f}{base_total / total:12.2f}x")
    for name, table in profiles.items():
        print(f"\nTop operators by self CPU time, one update, {name}:\n{table}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"batch": shape, "reps": args.reps, "runs": times, "median": median,
                                         "variants": [v.__dict__ for v in VARIANTS]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
