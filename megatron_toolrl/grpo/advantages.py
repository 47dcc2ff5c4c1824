"""Group-relative advantages: every sample is scored against the other samples of its prompt.

Rewards arrive flat, grouped contiguously: `rewards[g * n : (g + 1) * n]` are the n completions
of prompt g. Each function returns one advantage per completion (the same shape); the trainer
broadcasts it over the completion's tokens.
"""

from __future__ import annotations

from typing import Literal

import torch

AdvantageMode = Literal["mean_std", "mean", "leave_one_out"]
"""mean_std: GRPO (Shao et al. 2024, DeepSeekMath): (r - mean) / (std + eps).
mean: Dr. GRPO (Liu et al. 2025): r - mean, no std division (removes the difficulty bias).
leave_one_out: RLOO (Ahmadian et al. 2024): r_i - mean of the other n-1 rewards."""


def _grouped(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (num_prompts * group_size,), got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.float().view(-1, group_size)  # (G, n)


def group_advantages(rewards: torch.Tensor, group_size: int, mode: AdvantageMode = "mean_std", eps: float = 1e-6) -> torch.Tensor:
    """Advantages (G*n,) from rewards (G*n,).

    mean_std uses the unbiased std over the group (as DeepSeekMath's GRPO, TRL and verl); a group
    whose rewards are all equal gets advantage 0 everywhere (no signal), not a division by ~0.
    """
    grouped = _grouped(rewards, group_size)
    mean = grouped.mean(dim=1, keepdim=True)
    if mode == "mean":
        adv = grouped - mean
    elif mode == "mean_std":
        if group_size == 1:
            raise ValueError("mean_std advantages need group_size >= 2")
        std = grouped.std(dim=1, keepdim=True, unbiased=True)
        adv = (grouped - mean) / (std + eps)
    elif mode == "leave_one_out":
        if group_size == 1:
            raise ValueError("leave_one_out advantages need group_size >= 2")
        others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
        adv = grouped - others_mean
    else:
        raise ValueError(f"unknown advantage mode {mode!r}")
    return adv.reshape(-1)


def groups_with_signal(rewards: torch.Tensor, group_size: int, atol: float = 1e-9) -> torch.Tensor:
    """Bool (G,): groups whose rewards are not all equal (DAPO's dynamic-sampling filter).

    A group with equal rewards has zero advantage for every sample and contributes no gradient;
    dynamic sampling drops such groups and refills the batch.
    """
    grouped = _grouped(rewards, group_size)
    return (grouped.max(dim=1).values - grouped.min(dim=1).values) > atol
