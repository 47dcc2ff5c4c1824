"""Llama (SmolLM2, Llama 3.x): the HF <-> megatron names of one decoder layer.

The other families are this layer plus their extra tensors. HF's rotary embedding uses the
rotate-half convention for q/k rows, as megatron's non-interleaved rope does, so q and k need no
row permutation.
"""

from __future__ import annotations

from megatron_toolrl.bridge.tensor_maps import QKV, GateUp, Replicated, Split, TensorMap
from megatron_toolrl.models.arch import ArchSpec


def layer_maps(arch: ArchSpec, layer: int) -> list[TensorMap]:
    hf, mc = f"model.layers.{layer}.", f"decoder.layers.{layer}."
    hidden, ffn = arch.hidden_size, arch.ffn_hidden_size
    attn_width = arch.num_attention_heads * arch.head_dim
    return [
        Replicated(mc + "input_layernorm.weight", hf + "input_layernorm.weight", (hidden,)),
        QKV(mc + "self_attention.linear_qkv.weight", hf + "self_attn.q_proj.weight", hf + "self_attn.k_proj.weight",
            hf + "self_attn.v_proj.weight", arch.num_attention_heads, arch.num_kv_heads, arch.head_dim, hidden),
        Split(mc + "self_attention.linear_proj.weight", hf + "self_attn.o_proj.weight", (hidden, attn_width), axis=1),
        Replicated(mc + "pre_mlp_layernorm.weight", hf + "post_attention_layernorm.weight", (hidden,)),
        GateUp(mc + "mlp.linear_fc1.weight", hf + "mlp.gate_proj.weight", hf + "mlp.up_proj.weight", ffn, hidden),
        Split(mc + "mlp.linear_fc2.weight", hf + "mlp.down_proj.weight", (hidden, ffn), axis=1),
    ]
