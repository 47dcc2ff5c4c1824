"""One GRPO step, top to bottom: prompts -> rollouts -> rewards -> hard-sample pool ->
advantages -> old logprobs -> clipped policy loss and optimizer steps -> weight sync -> metrics.

Rollouts, rewards and the pool live on the driver (rank 0); the token batch is broadcast, and
every rank trains on its data-parallel share. The loss is `grpo.loss.policy_loss`, called from
the `loss_fn` closure that `MegatronPolicy.train_step` runs per micro-batch.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.grpo.advantages import group_advantages, groups_with_signal
from megatron_toolrl.grpo.loss import policy_loss
from megatron_toolrl.policy import TokenBatch, TokenCounts
from megatron_toolrl.rollout.types import Completion, SamplingSettings
from megatron_toolrl.train.run import Run, broadcast_object, is_driver, push_weights


@dataclass
class Rollouts:
    """What the driver sampled and scored for one step (flat lists, grouped contiguously)."""

    prompt_ids: list[list[int]]            # per prompt
    completions: list[list[Completion]]    # per prompt, group_size each
    rewards: list[float]                   # per completion
    advantages: list[float]                # per completion
    metrics: dict[str, float]


def sampling_for(run: Run, step: int, round_: int = 0) -> SamplingSettings:
    r = run.cfg.rollout
    # A seed per (run, step, round): the same step resamples the same completions after a resume.
    seed = (run.cfg.seed * 1_000_003 + step * 1_009 + round_ * 101) % (2**31)
    return SamplingSettings(n=run.cfg.grpo.group_size, temperature=r.temperature, top_p=r.top_p,
                            max_tokens=r.max_new_tokens, seed=seed)


def collect_rollouts(run: Run, step: int) -> Rollouts:
    """Driver only: sample groups, score them, update the hard-sample pool, compute advantages."""
    cfg, n = run.cfg, run.cfg.grpo.group_size
    kept_tasks: list[ToolTask] = []
    prompt_ids: list[list[int]] = []
    groups: list[list[Completion]] = []
    rewards: list[float] = []
    batches = []
    metrics: dict[str, float] = {}
    started = time.perf_counter()
    rounds = 1 + (cfg.grpo.dynamic_sampling_max_rounds if cfg.grpo.dynamic_sampling else 0)
    for round_ in range(rounds):
        indices = run.sampler.next_batch(skip=lambda i: run.pool.is_retired(run.tasks[i].id))
        tasks = [run.tasks[i] for i in indices]
        shots = [max(cfg.prompt.base_shots, run.pool.shots_for(t.id)) for t in tasks]
        ids = [run.prompt_ids(run.prompt_text(t, k, random.Random(f"{cfg.seed}-{step}-{round_}-{t.id}")))
               for t, k in zip(tasks, shots)]
        outs = run.engine.generate(ids, sampling_for(run, step, round_))
        flat_tasks = [t for t in tasks for _ in range(n)]
        scored = run.reward_fn.compute_rewards(flat_tasks, [c.text for g in outs for c in g], step, cfg.prompt.format,
                                               update_trigger=round_ == 0)
        batches.append(scored)
        # ToolExpander: a prompt with no correct rollout over judge_rollouts becomes hard and
        # comes back with demonstrations; every transition is counted.
        for g, (index, task) in enumerate(zip(indices, tasks)):
            num_correct = sum(scored.correct[g * n : (g + 1) * n])
            event = run.pool.observe(task.id, n, num_correct)
            if event in ("became_hard", "next_round") and cfg.hard_sampling.requeue:
                run.sampler.requeue(index)
        group_rewards = torch.tensor(scored.rewards)
        keep = groups_with_signal(group_rewards, n) if cfg.grpo.dynamic_sampling else torch.ones(len(tasks), dtype=torch.bool)
        for g in range(len(tasks)):
            if keep[g] and len(kept_tasks) < cfg.grpo.prompts_per_step:
                kept_tasks.append(tasks[g])
                prompt_ids.append(ids[g])
                groups.append(outs[g])
                rewards.extend(scored.rewards[g * n : (g + 1) * n])
        if len(kept_tasks) >= cfg.grpo.prompts_per_step:
            break
    advantages = group_advantages(torch.tensor(rewards), n, cfg.grpo.advantage).tolist() if rewards else []
    metrics.update(batches[0].metrics())
    metrics["rollout/seconds"] = time.perf_counter() - started
    metrics["rollout/rounds"] = len(batches)
    metrics["rollout/groups_kept"] = len(kept_tasks)
    all_rewards = torch.tensor([r for b in batches for r in b.rewards]).view(-1, n)
    metrics["rollout/zero_variance_groups"] = float((all_rewards.max(1).values == all_rewards.min(1).values).float().mean())
    if rewards:  # of the groups trained on (none under dynamic sampling, which keeps only groups with signal)
        kept = torch.tensor(rewards).view(-1, n)
        metrics["rollout/kept_zero_variance_groups"] = float((kept.max(1).values == kept.min(1).values).float().mean())
    lengths = [len(c.token_ids) for g in groups for c in g]
    metrics["rollout/response_tokens_mean"] = sum(lengths) / max(len(lengths), 1)
    metrics["rollout/truncated_frac"] = sum(c.finish_reason == "length" for g in groups for c in g) / max(len(lengths), 1)
    metrics.update({f"pool/{k}": float(v) for k, v in run.pool.counts().items()})
    return Rollouts(prompt_ids, groups, rewards, advantages, metrics)


def token_batch(prompt_ids: list[list[int]], groups: list[list[Completion]], advantages: list[float], pad_id: int) -> TokenBatch:
    """Right-padded (prompt + completion) rows; the loss mask covers completion tokens only."""
    rows, masks = [], []
    for ids, group in zip(prompt_ids, groups):
        for c in group:
            rows.append(ids + c.token_ids)
            masks.append([0.0] * len(ids) + [1.0] * len(c.token_ids))
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)
    loss_mask = torch.tensor([m + [0.0] * (width - len(m)) for m in masks])
    adv = torch.tensor(advantages, dtype=torch.float32).unsqueeze(1) * loss_mask  # (B, T)
    return TokenBatch(input_ids=input_ids, loss_mask=loss_mask, advantages=adv)


def grpo_step(run: Run, step: int) -> dict[str, float]:
    """One GRPO step on every rank; returns the step's metrics (complete on the driver)."""
    cfg = run.cfg
    # 1-4. Rollouts, rewards, hard-sample pool and advantages (driver), then the token batch to all ranks.
    rollouts = collect_rollouts(run, step) if is_driver() else None
    batch_and_metrics = None
    if is_driver():
        batch = token_batch(rollouts.prompt_ids, rollouts.completions, rollouts.advantages,
                            pad_id=run.tokenizer.pad_token_id or 0) if rollouts.rewards else None
        batch_and_metrics = (batch, rollouts.metrics)
    batch, metrics = broadcast_object(batch_and_metrics)
    if batch is None:
        return {**metrics, "train/skipped": 1.0}

    # 5. Old (and reference) logprobs, recomputed by the trainer at the sampling temperature. A
    # single on-policy update needs no separate pass: its old logprobs are the current ones detached.
    started = time.perf_counter()
    single_update = cfg.grpo.epochs_per_batch == 1 and cfg.grpo.minibatches == 1
    if cfg.grpo.recompute_old_logprobs or not single_update:
        batch.old_logprobs = run.policy.compute_logprobs(batch, masked_only=True)
    if run.reference is not None:
        batch.ref_logprobs = run.reference.compute_logprobs(batch, masked_only=True)
    metrics["time/logprobs"] = time.perf_counter() - started

    # 6. Clipped policy loss and optimizer steps over this rank's data-parallel share.
    def loss_fn(logprobs: torch.Tensor, entropy: torch.Tensor, mb: TokenBatch, counts: TokenCounts):
        old_logprobs = logprobs.detach() if mb.old_logprobs is None else mb.old_logprobs
        loss, parts = policy_loss(logprobs, old_logprobs, mb.advantages, mb.loss_mask, cfg.grpo.loss,
                                  num_tokens=counts.tokens, num_seqs=counts.sequences, ref_logprobs=mb.ref_logprobs)
        return loss, {k: v / counts.tokens for k, v in parts.items() if k != "tokens"}

    started = time.perf_counter()
    dp = run.policy.groups
    share = batch.shard(dp.dp_rank, dp.dp_size)
    results = []
    for _ in range(cfg.grpo.epochs_per_batch):
        rows = share.num_sequences
        per = -(-rows // cfg.grpo.minibatches)
        for start in range(0, rows, per):
            results.append(run.policy.train_step(share.select(slice(start, start + per)), loss_fn))
    metrics["time/update"] = time.perf_counter() - started
    last = results[-1]
    metrics.update({"loss/total": last.loss, "optim/grad_norm": last.grad_norm, "optim/lr": last.lr,
                    "optim/update_ok": float(last.update_successful)})
    metrics.update({f"loss/{k.removesuffix('_sum')}": v for k, v in last.metrics.items() if k != "entropy"})
    metrics["policy/entropy"] = last.metrics.get("entropy", float("nan"))

    # 7. Weight sync through the bridge, checked on the probe batch.
    started = time.perf_counter()
    metrics.update(push_weights(run, verify=run.pushes % max(cfg.rollout.verify_every, 1) == 0))
    metrics["time/sync"] = time.perf_counter() - started
    if dist.is_initialized():
        dist.barrier()
    return metrics
