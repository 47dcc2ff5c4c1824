"""Optimizer settings, and wrapping model chunks in megatron DDP with a megatron optimizer.

megatron's DistributedDataParallel accumulates gradients into fp32 `param.main_grad` buffers
(`grad_reduce_in_fp32`), and `get_megatron_optimizer` picks the optimizer class from the
precision: fp32 params -> FP32Optimizer; bf16 params -> Float16OptimizerWithFloat16Params, which
keeps fp32 master copies; `use_distributed_optimizer` -> DistributedOptimizer, which shards the
fp32 master weights and Adam moments over data-parallel ranks (ZeRO-1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from megatron_toolrl import platform
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.policy.lr_schedule import LRScheduleConfig


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW through megatron-core's optimizer; defaults are megatron-core's unless noted."""

    lr: float = 1e-6
    """Peak learning rate. 1e-6 is the usual GRPO value for 1.5B-7B models (ToolRL, NeMo-RL GRPO recipes)."""
    weight_decay: float = 0.01
    """Decoupled (AdamW) weight decay; biases and norm weights get none (megatron's wd_mult = 0)."""
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    clip_grad: float = 1.0
    """Global L2 gradient-norm clip (over all TP/PP/DP shards). 0 disables clipping."""
    use_distributed_optimizer: bool = False
    """Shard fp32 master weights and Adam moments over data-parallel ranks (ZeRO-1)."""
    lr_schedule: LRScheduleConfig = field(default_factory=LRScheduleConfig)
    """Warmup and decay of the learning rate (see policy.lr_schedule)."""

    def __post_init__(self) -> None:
        if isinstance(self.lr_schedule, dict):
            object.__setattr__(self, "lr_schedule", LRScheduleConfig(**self.lr_schedule))
        if self.lr <= 0:
            raise ConfigError(f"must be > 0, got {self.lr}", field="optimizer.lr")
        if self.weight_decay < 0:
            raise ConfigError(f"must be >= 0, got {self.weight_decay}", field="optimizer.weight_decay")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"must be in [0, 1), got {getattr(self, name)}", field=f"optimizer.{name}")
        if self.adam_eps <= 0:
            raise ConfigError(f"must be > 0, got {self.adam_eps}", field="optimizer.adam_eps")
        if self.clip_grad < 0:
            raise ConfigError(f"must be >= 0, got {self.clip_grad}", field="optimizer.clip_grad")


def _finalize_grads_without_token_scaling(model_chunks: list, num_tokens: Any = None, **kwargs: Any) -> None:
    # Our losses are already divided by the global token count (policy.batch.TokenCounts), so
    # megatron's per-token rescaling of the gradients is skipped; the DP/embedding reductions stay.
    from megatron.core.distributed import finalize_model_grads

    finalize_model_grads(model_chunks, None, **kwargs)


def wrap_with_ddp(chunks: list, settings: OptimizerSettings) -> list:
    """megatron DDP around each model chunk; hooks the schedule's grad sync onto the shared config.

    `calculate_per_token_loss` is switched on before wrapping: DDP then sums gradients over DP
    ranks instead of averaging them, and the schedules neither divide the loss by the number of
    micro-batches nor by a token count. The loss functions normalise by global counts themselves.
    """
    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig

    config = chunks[0].config
    config.calculate_per_token_loss = True
    ddp_config = DistributedDataParallelConfig(
        grad_reduce_in_fp32=True,
        overlap_grad_reduce=False,
        use_distributed_optimizer=settings.use_distributed_optimizer,
    )
    wrapped = [
        DistributedDataParallel(config=config, ddp_config=ddp_config, module=chunk, disable_bucketing=i > 0)
        for i, chunk in enumerate(chunks)
    ]
    config.no_sync_func = [w.no_sync for w in wrapped] if len(wrapped) > 1 else wrapped[0].no_sync
    config.finalize_model_grads_func = _finalize_grads_without_token_scaling
    return wrapped


def build_optimizer(ddp_chunks: list, settings: OptimizerSettings, params_dtype: torch.dtype):
    """megatron's optimizer over the DDP-wrapped chunks (fp32 master weights for 16-bit params)."""
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer

    cfg = OptimizerConfig(
        optimizer="adam",
        lr=settings.lr,
        min_lr=settings.lr_schedule.min_lr,
        weight_decay=settings.weight_decay,
        adam_beta1=settings.adam_beta1,
        adam_beta2=settings.adam_beta2,
        adam_eps=settings.adam_eps,
        clip_grad=settings.clip_grad,
        bf16=params_dtype is torch.bfloat16,
        fp16=params_dtype is torch.float16,
        params_dtype=params_dtype,
        use_distributed_optimizer=settings.use_distributed_optimizer,
    )
    with platform.cuda_to_cpu():
        optimizer = get_megatron_optimizer(cfg, ddp_chunks)
    # fp16 needs the loss scaled before backward; bf16/fp32 optimizers scale by 1.
    ddp_chunks[0].config.grad_scale_func = optimizer.scale_loss
    return optimizer
