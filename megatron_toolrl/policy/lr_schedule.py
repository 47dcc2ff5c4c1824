"""Learning-rate schedules: linear warmup, then constant, cosine or exponential decay.

megatron-core's OptimizerParamScheduler has no exponential decay, which ToolExpander's mode
needs ("exponential learning-rate decay to damp oscillations", arXiv 2510.07737 abstract), so the
rule is a pure function here and a small scheduler object applies it to the optimizer's groups.

With s = optimizer steps already taken (0 for the first update), W = warmup_steps, lr0 = the
peak learning rate:

    s <  W:  lr = lr0 * (s + 1) / W
    s >= W:  k = s - W and
      constant:     lr = lr0
      exponential:  lr = max(min_lr, lr0 * gamma ** k)
      cosine:       lr = min_lr + (lr0 - min_lr) * (1 + cos(pi * min(k, D) / D)) / 2,  D = decay_steps

Weight decay is set per group as weight_decay * group['wd_mult'] (megatron's optimizer marks
biases and norm weights with wd_mult = 0 and relies on its scheduler to apply that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from megatron_toolrl.errors import ConfigError

DecayStyle = Literal["constant", "cosine", "exponential"]


@dataclass(frozen=True)
class LRScheduleConfig:
    """Shape of the learning-rate curve; the peak value is `OptimizerSettings.lr`."""

    style: DecayStyle = "constant"
    """'constant'; 'cosine' to min_lr over decay_steps; 'exponential' by gamma per step (ToolExpander)."""
    warmup_steps: int = 0
    """Optimizer steps of linear warmup from lr0/W to lr0. Default 0: RL fine-tuning starts from a
    trained model (NeMo-RL's GRPO recipes use a short warmup; set it per recipe)."""
    gamma: float = 1.0
    """Per-step multiplier after warmup for 'exponential' (0 < gamma <= 1). ToolExpander gives no
    value in its abstract; a recipe must set it (e.g. 0.99 halves the LR in ~69 steps)."""
    decay_steps: int = 0
    """Steps after warmup over which 'cosine' goes from lr0 to min_lr (then stays at min_lr)."""
    min_lr: float = 0.0
    """Floor for 'cosine' and 'exponential'."""

    def __post_init__(self) -> None:
        if self.style not in ("constant", "cosine", "exponential"):
            raise ConfigError(f"must be constant, cosine or exponential, got {self.style!r}", field="lr_schedule.style")
        if self.warmup_steps < 0:
            raise ConfigError(f"must be >= 0, got {self.warmup_steps}", field="lr_schedule.warmup_steps")
        if not 0.0 < self.gamma <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {self.gamma}", field="lr_schedule.gamma")
        if self.style == "cosine" and self.decay_steps < 1:
            raise ConfigError("cosine decay needs decay_steps >= 1", field="lr_schedule.decay_steps")
        if self.min_lr < 0:
            raise ConfigError(f"must be >= 0, got {self.min_lr}", field="lr_schedule.min_lr")


def lr_at(step: int, peak_lr: float, cfg: LRScheduleConfig) -> float:
    """The learning rate of the update after `step` earlier updates (formula in the module docstring)."""
    if step < cfg.warmup_steps:
        return peak_lr * (step + 1) / cfg.warmup_steps
    k = step - cfg.warmup_steps
    if cfg.style == "exponential":
        return max(cfg.min_lr, peak_lr * cfg.gamma**k)
    if cfg.style == "cosine":
        progress = min(k, cfg.decay_steps) / cfg.decay_steps
        return cfg.min_lr + (peak_lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak_lr


class LRScheduler:
    """Sets lr and weight decay on an optimizer's param groups for the coming update.

    Usage per training step: `apply(optimizer)`, `optimizer.step()`, `advance()`. The state is the
    number of updates taken; it is saved with the checkpoint, the curve itself comes from config.
    """

    def __init__(self, cfg: LRScheduleConfig, peak_lr: float, weight_decay: float) -> None:
        self.cfg = cfg
        self.peak_lr = peak_lr
        self.weight_decay = weight_decay
        self.step_count = 0

    @property
    def current_lr(self) -> float:
        return lr_at(self.step_count, self.peak_lr, self.cfg)

    def apply(self, param_groups: list[dict[str, Any]]) -> float:
        lr = self.current_lr
        for group in param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
            group["weight_decay"] = self.weight_decay * group.get("wd_mult", 1.0)
        return lr

    def advance(self) -> None:
        self.step_count += 1

    def state_dict(self) -> dict[str, int]:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
