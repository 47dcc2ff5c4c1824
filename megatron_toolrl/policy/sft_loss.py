"""Masked negative log-likelihood: the SFT loss, in the policy's loss-function form."""

from __future__ import annotations

import torch

from megatron_toolrl.policy.batch import TokenBatch, TokenCounts


def masked_nll_loss(
    logprobs: torch.Tensor, entropy: torch.Tensor, batch: TokenBatch, counts: TokenCounts
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """This micro-batch's share of the global token-mean NLL.

        loss_mb = -sum_{b,t} mask[b,t] * logprobs[b,t] / N,   N = global masked-token count

    Summed over micro-batches and DP ranks this is -sum(mask * logprobs) / N over the global
    batch, whatever the split. `entropy` is unused (the policy reports it as a metric).
    """
    loss = -(logprobs * batch.loss_mask).sum() / max(counts.tokens, 1.0)
    return loss, {"tokens": batch.loss_mask.sum().detach()}
