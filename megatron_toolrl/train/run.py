"""Everything a training run holds, built once from a TrainConfig.

The driver (global rank 0) owns the rollout engine, the prompts and the rewards; every rank owns
its shard of the megatron policy. What the driver decides (token batches, metrics) reaches the
other ranks through `broadcast_object`, so the step function reads the same on every rank.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from megatron_toolrl.data.demos import DemoPool
from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.grpo.hard_pool import HardSamplePool
from megatron_toolrl.models import ArchSpec, arch_from_hf
from megatron_toolrl.policy import MegatronPolicy, OptimizerSettings
from megatron_toolrl.prompts import render
from megatron_toolrl.rewards import RewardFn
from megatron_toolrl.train.config import TrainConfig
from megatron_toolrl.train.metrics import MetricsWriter
from megatron_toolrl.train.sampler import TaskSampler


def is_driver() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def broadcast_object(obj: Any) -> Any:
    """The driver's `obj` on every rank (identity in a single process)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return obj
    box = [obj if is_driver() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def load_tasks(cfg: TrainConfig) -> tuple[list[ToolTask], list[ToolTask]]:
    """(train, held-out) tasks. Synthetic held-out tasks come from another seed, so never overlap."""
    from megatron_toolrl.data.augment import irrelevance_variants
    from megatron_toolrl.data.loaders import load_dataset
    from megatron_toolrl.data.synthetic import generate_tasks

    d = cfg.data
    if d.source == "synthetic":
        make = lambda n, seed: generate_tasks(n, seed, categories=d.categories, irrelevance_rate=d.irrelevance_rate,
                                              max_tools=d.max_tools, max_calls=d.max_calls, domains=d.domains)
        return make(d.num_train, d.seed), make(d.num_eval, d.seed + 1_000_003)
    tasks, report = load_dataset(d.source, d.path, on_error=d.on_error)
    report.log()
    random.Random(d.seed).shuffle(tasks)
    held_out, train = tasks[: d.num_eval], tasks[d.num_eval :]
    if d.num_train:
        train = train[: d.num_train]
    if d.irrelevance_rate > 0:
        train = train + irrelevance_variants(train, d.irrelevance_rate, d.seed)
    return train, held_out


@dataclass
class Run:
    """The state of a training run (see the module docstring for who holds what)."""

    cfg: TrainConfig
    arch: ArchSpec
    policy: MegatronPolicy
    tokenizer: Any
    tasks: list[ToolTask]
    eval_tasks: list[ToolTask]
    demos: DemoPool
    sampler: TaskSampler
    pool: HardSamplePool
    reward_fn: RewardFn
    metrics: MetricsWriter
    run_dir: Path
    engine: Any = None
    """The RolloutEngine, on the driver only."""
    reference: MegatronPolicy | None = None
    """Frozen reference policy for the KL term (only when loss.kl_coef > 0)."""
    probe_ids: list[list[int]] = field(default_factory=list)
    """Fixed token sequences whose engine logprobs are checked against the trainer's after pushes."""
    pushes: int = 0

    # ------------------------------------------------------------------ prompts

    def prompt_text(self, task: ToolTask, shots: int, rng: random.Random) -> str:
        p = self.cfg.prompt
        demos = self.demos.select(task, shots, rng) if shots > 0 else []
        template = self.tokenizer if p.style == "instruct" else None
        return render(task, template, p.style, p.format, p.think, few_shot=demos, self_exemplar=p.self_exemplar)

    def prompt_ids(self, text: str) -> list[int]:
        # The chat template already wrote every special token: add none.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def build_policy(cfg: TrainConfig, arch: ArchSpec, initial_weights: Any, lr: float | None = None) -> MegatronPolicy:
    optim = cfg.optimizer if lr is None else OptimizerSettings(**{**cfg.optimizer.__dict__, "lr": lr})
    return MegatronPolicy(arch, cfg.model, optim, micro_batch_size=cfg.grpo.micro_batch_size,
                          temperature=cfg.rollout.temperature, initial_weights=initial_weights)


def build_run(cfg: TrainConfig, initial_weights: Any) -> Run:
    """Policy on every rank; tasks, engine and rewards on the driver. `initial_weights`: an HF dir
    or an HF-named state dict (e.g. after an SFT warm start)."""
    from transformers import AutoTokenizer

    world = dist.get_world_size() if dist.is_initialized() else 1
    if cfg.rollout.mode == "inproc" and world > 1:
        # vLLM initialises its own distributed state inside the driver and takes the trainer's
        # default group for its world: its group creation then waits forever for the other ranks.
        raise ConfigError(f"the in-process engine needs a single trainer process, this run has {world}: "
                          "use rollout.mode=server for data, tensor or pipeline parallel training",
                          field="rollout.mode")
    arch = arch_from_hf(cfg.hf_dir)
    policy = build_policy(cfg, arch, initial_weights)
    reference = None
    if cfg.grpo.loss.kl_coef > 0:
        reference = build_policy(cfg, arch, initial_weights)
    tokenizer = AutoTokenizer.from_pretrained(cfg.hf_dir)
    tasks, eval_tasks = load_tasks(cfg)
    run_dir = Path(cfg.metrics.dir)
    run = Run(
        cfg=cfg, arch=arch, policy=policy, tokenizer=tokenizer, tasks=tasks, eval_tasks=eval_tasks,
        demos=DemoPool.from_tasks(tasks),
        sampler=TaskSampler(num_tasks=len(tasks), prompts_per_step=cfg.grpo.prompts_per_step, seed=cfg.seed),
        pool=HardSamplePool(cfg.hard_sampling),
        reward_fn=RewardFn(cfg.reward),
        metrics=MetricsWriter(run_dir / "metrics.jsonl", run_dir / "tensorboard" if cfg.metrics.tensorboard else None,
                              enabled=is_driver()),
        run_dir=run_dir,
        reference=reference,
    )
    if is_driver():
        run.engine = start_engine(cfg, initial_weights)
        # Probe: two held-out prompts with their reference answers, fixed for the whole run.
        probe_tasks = (eval_tasks or tasks)[:2]
        from megatron_toolrl.toolcall import render_calls

        run.probe_ids = [
            run.prompt_ids(run.prompt_text(t, 0, random.Random(0)) + render_calls(t.reference_answer(), cfg.prompt.format))
            for t in probe_tasks
        ]
    run.probe_ids = broadcast_object(run.probe_ids)
    return run


def start_engine(cfg: TrainConfig, initial_weights: Any):
    """The rollout engine, loaded from the HF dir; the first push (in the loop) brings it to the
    policy's weights, so an SFT'd or resumed policy is what it samples from."""
    from megatron_toolrl.rollout.config import RolloutConfig

    r = cfg.rollout
    rc = RolloutConfig(hf_dir=cfg.hf_dir, mode=r.mode, dtype=r.dtype, max_model_len=r.max_model_len,
                       kv_cache_gib=r.kv_cache_gib, num_servers=len(r.server_urls) or r.num_servers,
                       server_urls=tuple(r.server_urls), tensor_parallel_size=r.tensor_parallel,
                       sync_transport=r.transport, sync_master_addr=r.sync_master_addr,
                       sync_master_port=r.sync_master_port, seed=cfg.seed)
    if r.mode == "inproc":
        from megatron_toolrl.rollout.inproc import InprocEngine

        return InprocEngine(rc)
    from megatron_toolrl.rollout.server import ServerEngine

    return ServerEngine(rc)


def push_weights(run: Run, verify: bool) -> dict[str, float]:
    """Export the policy through the bridge and load it into the engine; collective over ranks.

    With `verify`, the engine's logprobs of the probe sequences must match the trainer's (the
    engine raises SyncMismatchError beyond the dtype's tolerance)."""
    from megatron_toolrl.bridge import export_hf_tensors
    from megatron_toolrl.policy import TokenBatch
    from megatron_toolrl.rollout.types import ProbeBatch

    probe = None
    if verify and run.probe_ids:
        longest = max(len(ids) for ids in run.probe_ids)
        ids = torch.tensor([row + [0] * (longest - len(row)) for row in run.probe_ids])
        mask = torch.zeros_like(ids, dtype=torch.float)
        # Engines report raw-logit logprobs: compare at temperature 1 whatever the sampling temperature.
        lp = run.policy.compute_logprobs(TokenBatch(input_ids=ids, loss_mask=mask), temperature=1.0)
        probe = ProbeBatch(token_ids=run.probe_ids,
                           reference_logprobs=[lp[i, 1 : len(row)].tolist() for i, row in enumerate(run.probe_ids)])
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[run.cfg.rollout.dtype]
    buckets = export_hf_tensors(run.policy.chunks, run.arch, run.cfg.model, dtype=dtype)
    run.pushes += 1
    if not is_driver():
        for _ in buckets:  # every rank takes part in the TP/PP gathers
            pass
        return {}
    stats = run.engine.update_weights(buckets, probe=probe)
    out = {"sync/seconds": stats.seconds, "sync/bytes": float(stats.num_bytes)}
    if stats.agreements:
        out["sync/probe_max_abs_diff"] = float(stats.max_abs_diff)
        out["sync/probe_mean_abs_diff"] = float(stats.mean_abs_diff)
    return out
