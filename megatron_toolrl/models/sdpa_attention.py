"""Core attention of the local (pure torch) layer spec through torch's scaled_dot_product_attention.

megatron-core's local `DotProductAttention` materialises the (b, heads, s, s) score matrix, casts
it to fp32 for the softmax, builds the causal mask with masked_fill and repeats the KV heads for
GQA: on a CPU that is about a quarter of a GRPO update at prompt lengths of ~400 tokens
(bench/profile_grpo_update.py). `torch.nn.functional.scaled_dot_product_attention` with
`is_causal=True` and `enable_gqa=True` does the same math in one fused kernel (flash attention on
CPU, with its own fp32 accumulation), so this subclass swaps only the forward.

Everything that SDPA does not cover here falls back to megatron's own forward: an explicit
attention mask, attention dropout > 0 in training (megatron's RNG tracker owns dropout), sliding
windows, softmax offsets and query-key layer scaling. TP works unchanged: each rank holds whole
heads. The TransformerEngine spec (GPU) has its own fused attention and does not use this class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from megatron.core.transformer.dot_product_attention import DotProductAttention
from megatron.core.transformer.enums import AttnMaskType
from megatron.core.transformer.utils import is_layer_window_attention


class SDPADotProductAttention(DotProductAttention):
    """DotProductAttention whose causal, mask-free forward runs torch SDPA."""

    def _sdpa_applies(self, attention_mask: torch.Tensor | None, attn_mask_type: AttnMaskType | None) -> bool:
        mask_type = self.attn_mask_type if attn_mask_type is None else attn_mask_type
        cfg = self.config
        return (
            attention_mask is None
            and mask_type == AttnMaskType.causal
            and not (self.training and self.attention_dropout.p > 0)
            and self.softmax_offset is None
            and not cfg.apply_query_key_layer_scaling
            and not is_layer_window_attention(cfg.window_size, cfg.window_attn_skip_freq, self.layer_number)
        )

    def forward(self, query, key, value, attention_mask, attn_mask_type=None, attention_bias=None,
                packed_seq_params=None):
        if attention_bias is not None or packed_seq_params is not None or not self._sdpa_applies(
            attention_mask, attn_mask_type
        ):
            return super().forward(query, key, value, attention_mask, attn_mask_type, attention_bias, packed_seq_params)
        # megatron: [s, b, heads, head_dim]; SDPA: [b, heads, s, head_dim].
        q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))
        context = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=self.softmax_scale, enable_gqa=k.shape[1] != q.shape[1]
        )
        seq, batch = query.shape[0], query.shape[1]
        return context.permute(2, 0, 1, 3).reshape(seq, batch, self.hidden_size_per_partition)
