"""Trainer checkpoints: the policy's dist checkpoint plus everything needed to resume exactly.

Layout: `<checkpoint.dir>/step_<N>/` (the policy's dist checkpoint; the trainer state rides in
its `extra_state`) and `<checkpoint.dir>/latest` holding N, written only after step_<N> is
complete, so a run killed mid-save resumes from the previous checkpoint.

Trainer state = step, data order (sampler), hard-sample pool, reward schedule/trigger state,
collapse-guard state and LR scale. Rollouts are seeded by (seed, step), and the policy
checkpoint holds model, optimizer, LR schedule and RNG: a resumed run repeats the straight run.
"""

from __future__ import annotations

import shutil
import statistics
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.train.config import CheckpointConfig, GuardConfig
from megatron_toolrl.train.run import Run, is_driver


def step_dir(cfg: CheckpointConfig, step: int) -> Path:
    return Path(cfg.dir) / f"step_{step}"


def latest_step(cfg: CheckpointConfig) -> int | None:
    marker = Path(cfg.dir) / "latest"
    if not marker.exists():
        return None
    text = marker.read_text().strip()
    if not text.isdigit():
        raise CheckpointError(f"expected a step number, got {text[:40]!r}", path=marker)
    if not step_dir(cfg, int(text)).is_dir():
        raise CheckpointError(f"names step {text} but {step_dir(cfg, int(text))} is missing", path=marker)
    return int(text)


@dataclass
class CollapseGuard:
    """Detects NaN/inf losses, grad-norm spikes, reward collapse and entropy collapse."""

    cfg: GuardConfig
    grad_norms: deque = field(default_factory=lambda: deque(maxlen=10))
    rewards: deque = field(default_factory=lambda: deque(maxlen=5))
    best_reward_avg: float | None = None
    rollbacks: int = 0

    def check(self, metrics: dict[str, float]) -> str | None:
        """The reason this step looks collapsed, or None. Healthy steps update the running stats."""
        if not self.cfg.enabled or metrics.get("train/skipped"):
            return None
        loss, grad_norm = metrics.get("loss/total", 0.0), metrics.get("optim/grad_norm", 0.0)
        reward, entropy = metrics.get("reward/mean"), metrics.get("policy/entropy")
        if loss != loss or abs(loss) == float("inf") or grad_norm != grad_norm:
            return f"non-finite loss/grad norm (loss={loss}, grad_norm={grad_norm})"
        if len(self.grad_norms) >= 3 and grad_norm > self.cfg.grad_norm_spike * max(statistics.median(self.grad_norms), 1e-8):
            return f"grad norm spike: {grad_norm:.3g} > {self.cfg.grad_norm_spike} x median {statistics.median(self.grad_norms):.3g}"
        if self.cfg.min_entropy > 0 and entropy is not None and entropy < self.cfg.min_entropy:
            return f"entropy collapse: {entropy:.4f} < {self.cfg.min_entropy}"
        if reward is not None and self.best_reward_avg is not None and self.best_reward_avg > 0:
            if len(self.rewards) == self.rewards.maxlen:
                avg = sum(self.rewards) / len(self.rewards)
                if avg < self.cfg.reward_collapse_fraction * self.best_reward_avg:
                    return f"reward collapse: 5-step mean {avg:.3f} < {self.cfg.reward_collapse_fraction} x best {self.best_reward_avg:.3f}"
        self.grad_norms.append(grad_norm)
        if reward is not None:
            self.rewards.append(reward)
            if len(self.rewards) == self.rewards.maxlen:
                avg = sum(self.rewards) / len(self.rewards)
                self.best_reward_avg = avg if self.best_reward_avg is None else max(self.best_reward_avg, avg)
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"grad_norms": list(self.grad_norms), "rewards": list(self.rewards),
                "best_reward_avg": self.best_reward_avg, "rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.grad_norms = deque(state["grad_norms"], maxlen=10)
        self.rewards = deque(state["rewards"], maxlen=5)
        self.best_reward_avg = state["best_reward_avg"]
        self.rollbacks = state["rollbacks"]


def trainer_state(run: Run, step: int, guard: CollapseGuard) -> dict[str, Any]:
    return {
        "step": step,
        "sampler": run.sampler.state_dict(),
        "pool": run.pool.state_dict(),
        "reward": run.reward_fn.state_dict(),
        "guard": guard.state_dict(),
        "lr_scale": run.policy.scheduler.peak_lr / run.cfg.optimizer.lr,
        "pushes": run.pushes,
    }


def save(run: Run, step: int, guard: CollapseGuard) -> Path:
    """Collective: every rank writes its shards; the driver then moves `latest` and prunes."""
    import torch.distributed as dist

    path = step_dir(run.cfg.checkpoint, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    run.policy.save_checkpoint(path, extra_state=trainer_state(run, step, guard))
    if dist.is_initialized():
        dist.barrier()
    if is_driver():
        marker = Path(run.cfg.checkpoint.dir) / "latest"
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(str(step))
        tmp.replace(marker)
        kept = sorted((int(p.name.split("_")[1]) for p in Path(run.cfg.checkpoint.dir).glob("step_*") if p.name.split("_")[1].isdigit()))
        for old in kept[: -max(run.cfg.checkpoint.keep, 1)]:
            shutil.rmtree(step_dir(run.cfg.checkpoint, old), ignore_errors=True)
    return path


def restore(run: Run, step: int, guard: CollapseGuard) -> int:
    """Load `step_<step>` into the run; returns the step to continue after."""
    state = run.policy.load_checkpoint(step_dir(run.cfg.checkpoint, step))
    if state.get("step") != step:
        raise CheckpointError(f"holds trainer step {state.get('step')}, expected {step}",
                              path=step_dir(run.cfg.checkpoint, step), field="extra.step")
    run.sampler.load_state_dict(state["sampler"])
    run.pool.load_state_dict(state["pool"])
    run.reward_fn.load_state_dict(state["reward"])
    guard.load_state_dict(state["guard"])
    run.policy.scheduler.peak_lr = run.cfg.optimizer.lr * state["lr_scale"]
    run.pushes = state["pushes"]
    return step
