"""Supervised fine-tuning on reference answers: the papers' SFT baselines and RL warm starts.

The target of a task is what a demonstration of it says (`prompts.instructions.demo_answer`):
the calls in the run's output format, with a short reasoning when `think` is on and a
self-written `<example>` when Self-Exemplifying Thinking is on, then the end-of-turn token. Only
target tokens are in the loss.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from megatron_toolrl.data.demos import Demo
from megatron_toolrl.data.synthetic import generate_tasks
from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.models import ArchSpec
from megatron_toolrl.policy import LRScheduleConfig, MegatronPolicy, OptimizerSettings, TokenBatch, masked_nll_loss
from megatron_toolrl.prompts import render
from megatron_toolrl.prompts.instructions import demo_answer
from megatron_toolrl.train.config import TrainConfig
from megatron_toolrl.train.run import is_driver

SFT_SEED_OFFSET = 7_919
"""SFT tasks are generated with data.seed + this, so they differ from RL and held-out tasks."""


def sft_example(task: ToolTask, tokenizer: Any, cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """(prompt ids, target ids) of one task."""
    p = cfg.prompt
    prompt = render(task, tokenizer if p.style == "instruct" else None, p.style, p.format, p.think,
                    self_exemplar=p.self_exemplar)
    target = demo_answer(Demo(task, task.reference_answer()), p.format, p.think, p.self_exemplar)
    end = tokenizer.eos_token or ""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target + end, add_special_tokens=False)["input_ids"]
    return prompt_ids, target_ids


def sft_batch(examples: list[tuple[list[int], list[int]]], pad_id: int) -> TokenBatch:
    rows = [p + t for p, t in examples]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows], dtype=torch.long)
    mask = torch.tensor([[0.0] * len(p) + [1.0] * len(t) + [0.0] * (width - len(p) - len(t)) for p, t in examples])
    return TokenBatch(input_ids=ids, loss_mask=mask)


def run_sft(cfg: TrainConfig, arch: ArchSpec, tokenizer: Any, initial_weights: Any,
            log: Any = None) -> dict[str, torch.Tensor]:
    """`cfg.sft.steps` SFT updates from `initial_weights`; returns the trained weights as HF-named
    full tensors (on every rank), ready to be the RL policy's initial weights."""
    from megatron_toolrl.bridge import export_hf_tensors

    s = cfg.sft
    d = cfg.data
    tasks = generate_tasks(s.num_tasks, d.seed + SFT_SEED_OFFSET, categories=d.categories,
                           irrelevance_rate=d.irrelevance_rate, max_tools=d.max_tools, max_calls=d.max_calls, domains=d.domains)
    examples = [sft_example(t, tokenizer, cfg) for t in tasks]
    optim = OptimizerSettings(lr=s.lr, weight_decay=0.0, clip_grad=1.0,
                              use_distributed_optimizer=cfg.optimizer.use_distributed_optimizer,
                              lr_schedule=LRScheduleConfig(style="constant"))
    policy = MegatronPolicy(arch, cfg.model, optim, micro_batch_size=min(cfg.grpo.micro_batch_size, s.batch_size),
                            initial_weights=initial_weights)
    order = list(range(len(examples)))
    rng = random.Random(cfg.seed)
    rng.shuffle(order)
    pad_id = tokenizer.pad_token_id or 0
    with Progress(TextColumn("[bold]SFT warm start"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), disable=not is_driver()) as bar:
        job = bar.add_task("sft", total=s.steps, loss=float("nan"))
        for step in range(s.steps):
            start = (step * s.batch_size) % len(order)
            picked = [examples[order[(start + i) % len(order)]] for i in range(s.batch_size)]
            started = time.perf_counter()
            dp = policy.groups
            result = policy.train_step(sft_batch(picked, pad_id).shard(dp.dp_rank, dp.dp_size), masked_nll_loss)
            bar.update(job, advance=1, loss=result.loss)
            if is_driver() and not bar.console.is_terminal:
                print(f"[sft] step {step + 1}/{s.steps} loss {result.loss:.4f}", file=sys.stderr, flush=True)
            if log is not None:
                log(step + 1, {"sft/loss": result.loss, "sft/grad_norm": result.grad_norm,
                               "sft/seconds": time.perf_counter() - started})
    weights = {name: t.detach().clone() for bucket in export_hf_tensors(policy.chunks, arch, cfg.model) for name, t in bucket}
    del policy
    return weights
