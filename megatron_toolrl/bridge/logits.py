"""Full-vocabulary logits of a (TP/PP-sharded) megatron model, for checking a conversion against
HF transformers. Plain forward passes with explicit point-to-point hand-offs between pipeline
stages: a checking tool, not the training path (that uses megatron's schedules)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from megatron_toolrl.bridge.load import unwrap_chunks


def causal_mask(seq_len: int) -> Tensor:
    """megatron's boolean attention mask, (1, 1, S, S), True = masked (a future position)."""
    return torch.triu(torch.ones(1, 1, seq_len, seq_len, dtype=torch.bool), diagonal=1)


@torch.no_grad()
def megatron_logits(model_chunks: Sequence[torch.nn.Module], input_ids: Tensor, vocab_size: int) -> Tensor:
    """Logits (B, S, vocab_size) in fp32, on the model's device, on every rank of the model-parallel group.

    `input_ids` (B, S) must be the same on every rank. Padding rows of the vocabulary are cut off.
    Interleaved (virtual) pipelines are not supported here.
    """
    (chunk,) = unwrap_chunks(model_chunks)
    was_training = chunk.training
    chunk.eval()
    try:
        return _forward(chunk, input_ids, vocab_size)
    finally:
        chunk.train(was_training)


@torch.no_grad()
def _forward(chunk: torch.nn.Module, input_ids: Tensor, vocab_size: int) -> Tensor:
    from megatron.core import parallel_state as ps

    param = next(chunk.parameters())
    batch, seq = input_ids.shape
    input_ids = input_ids.to(param.device)
    position_ids = torch.arange(seq, device=param.device).unsqueeze(0).expand(batch, seq)
    mask = causal_mask(seq).to(param.device)
    pp_size = ps.get_pipeline_model_parallel_world_size()
    if pp_size > 1 and not ps.is_pipeline_first_stage():
        hidden = torch.empty(seq, batch, chunk.config.hidden_size, dtype=param.dtype, device=param.device)  # (S, B, H)
        dist.recv(hidden, src=ps.get_pipeline_model_parallel_prev_rank())
        chunk.set_input_tensor(hidden)
    out = chunk(input_ids, position_ids, mask)
    if pp_size > 1 and not ps.is_pipeline_last_stage():
        dist.send(out.contiguous(), dst=ps.get_pipeline_model_parallel_next_rank())

    tp_size = ps.get_tensor_model_parallel_world_size()
    if ps.is_pipeline_last_stage():
        logits = out.float()
        if tp_size > 1:
            parts = [torch.empty_like(logits) for _ in range(tp_size)]
            dist.all_gather(parts, logits.contiguous(), group=ps.get_tensor_model_parallel_group())
            logits = torch.cat(parts, dim=-1)
        logits = logits[..., :vocab_size].contiguous()
    else:
        logits = torch.empty(batch, seq, vocab_size, dtype=torch.float32, device=param.device)
    if pp_size > 1:
        group = ps.get_pipeline_model_parallel_group()
        dist.broadcast(logits, src=dist.get_global_rank(group, pp_size - 1), group=group)
    return logits
