"""The clipped policy-gradient loss of GRPO, as a pure tensor function.

Per token t of completion i, with r = exp(logp - logp_old) and advantage A_i:

    pg_t   = max(-A_i * r, -A_i * clip(r, 1 - eps_low, 1 + eps_high))        PPO clip (Schulman 2017),
                                                                              clip-higher (DAPO, Yu 2025)
    pg_t   = min(pg_t, -A_i * c)  where A_i < 0                               dual clip (Ye et al. 2020)
    L_t    = pg_t + beta * KL_t(pi || pi_ref)                                 KL off by default (beta = 0)

aggregated over the tokens with mask m (1 = a generated token that counts):

    token-mean               sum_i sum_t m L / N_tokens                                   (DAPO)
    seq-mean-token-mean      sum_i [ sum_t m L / sum_t m ] / N_seqs                       (GRPO paper)
    seq-mean-token-sum-norm  sum_i sum_t m L / (N_seqs * T_norm)                          (Dr. GRPO)

N_tokens and N_seqs are the counts over the WHOLE batch (every micro-batch, every data-parallel
rank), passed in by the caller: then summing this loss over micro-batches and ranks gives the
loss of the whole batch, whatever the split (NeMo-RL's ClippedPGLossFn convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from megatron_toolrl.errors import ConfigError

LossAggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
KLEstimator = Literal["k1", "k3", "low_var_kl"]


@dataclass
class PolicyLossConfig:
    """Clipping, KL and aggregation of the policy loss."""

    eps_low: float = 0.2
    """Lower clip: the ratio is clipped at 1 - eps_low. 0.2 is PPO's and DAPO's value."""
    eps_high: float = 0.28
    """Upper clip (clip-higher): 1 + eps_high. ToolExpander states "adjusted clipping
    coefficients" without values in its abstract; 0.28 is DAPO's clip-higher, our default."""
    dual_clip_c: float | None = None
    """Dual clip bound c > 1 for negative advantages (Ye et al. 2020 use 3.0). None = off."""
    kl_coef: float = 0.0
    """beta. 0 = no KL term and no reference model (ToolExpander: "removes the KL term";
    DAPO, TRL's default). Tool-N1 used 0.001 with low_var_kl."""
    kl_estimator: KLEstimator = "low_var_kl"
    """k1: logp - logp_ref. k3: exp(ref - logp) - (ref - logp) - 1 (Schulman's unbiased, >= 0).
    low_var_kl: k3 clamped to [-10, 10] (verl's default for GRPO)."""
    aggregation: LossAggregation = "token-mean"
    """How per-token losses become one scalar (see the module docstring)."""
    norm_length: int | None = None
    """T_norm for seq-mean-token-sum-norm: the generation budget (max new tokens). Required there."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.eps_low < 1.0):
            raise ConfigError(f"must be in [0, 1), got {self.eps_low}", field="loss.eps_low")
        if self.eps_high < 0.0:
            raise ConfigError(f"must be >= 0, got {self.eps_high}", field="loss.eps_high")
        if self.dual_clip_c is not None and self.dual_clip_c <= 1.0:
            raise ConfigError(f"must be > 1 (or null), got {self.dual_clip_c}", field="loss.dual_clip_c")
        if self.kl_coef < 0.0:
            raise ConfigError(f"must be >= 0, got {self.kl_coef}", field="loss.kl_coef")
        if self.aggregation == "seq-mean-token-sum-norm" and not self.norm_length:
            raise ConfigError("seq-mean-token-sum-norm needs norm_length (the max new tokens)", field="loss.norm_length")


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: KLEstimator) -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate from sampled-token logprobs, same shape as the inputs."""
    log_ratio = logprobs - ref_logprobs
    if estimator == "k1":
        return log_ratio
    k3 = torch.exp(-log_ratio) + log_ratio - 1.0
    if estimator == "k3":
        return k3
    if estimator == "low_var_kl":
        return k3.clamp(-10.0, 10.0)
    raise ValueError(f"unknown KL estimator {estimator!r}")


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, aggregation: LossAggregation, num_tokens: float,
              num_seqs: float, norm_length: int | None = None) -> torch.Tensor:
    """One scalar from per-token values (B, T) under mask (B, T), normalised by global counts."""
    masked = per_token * mask
    if aggregation == "token-mean":
        return masked.sum() / max(num_tokens, 1.0)
    if aggregation == "seq-mean-token-mean":
        per_seq = masked.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
        return per_seq.sum() / max(num_seqs, 1.0)
    if aggregation == "seq-mean-token-sum-norm":
        assert norm_length, "seq-mean-token-sum-norm needs norm_length"
        return masked.sum() / (max(num_seqs, 1.0) * norm_length)
    raise ValueError(f"unknown aggregation {aggregation!r}")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cfg: PolicyLossConfig,
    num_tokens: float,
    num_seqs: float,
    ref_logprobs: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO's clipped loss. Shapes: logprobs, old_logprobs, mask, ref_logprobs (B, T);
    advantages (B,) per sequence or (B, T) per token. Returns (loss, metrics); metrics are
    detached sums over this micro-batch's masked tokens (divide by num_tokens to average)."""
    mask = mask.to(logprobs.dtype)
    adv = advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages  # (B, 1) or (B, T)
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - cfg.eps_low, 1.0 + cfg.eps_high)
    pg = torch.maximum(unclipped, clipped)
    if cfg.dual_clip_c is not None:
        pg = torch.where(adv < 0, torch.minimum(pg, -adv * cfg.dual_clip_c), pg)
    per_token = pg
    kl = None
    if cfg.kl_coef > 0.0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs from the reference model")
        kl = kl_penalty(logprobs, ref_logprobs, cfg.kl_estimator)
        per_token = per_token + cfg.kl_coef * kl
    loss = aggregate(per_token, mask, cfg.aggregation, num_tokens, num_seqs, cfg.norm_length)
    with torch.no_grad():
        adv_full = adv.expand_as(ratio)
        clipped_low = ((ratio < 1.0 - cfg.eps_low) & (adv_full < 0)).to(mask.dtype)
        clipped_high = ((ratio > 1.0 + cfg.eps_high) & (adv_full > 0)).to(mask.dtype)
        metrics = {
            "pg_loss_sum": (pg * mask).sum(),
            "clip_low_frac_sum": (clipped_low * mask).sum(),
            "clip_high_frac_sum": (clipped_high * mask).sum(),
            "ratio_sum": (ratio * mask).sum(),
            # k3 estimate of KL(pi_old || pi): how far this update moved from the rollout policy.
            "approx_kl_sum": ((torch.exp(log_ratio) - 1.0 - log_ratio) * mask).sum(),
            "tokens": mask.sum(),
        }
        if kl is not None:
            metrics["kl_ref_sum"] = (kl * mask).sum()
    return loss, metrics
