"""Qwen2 / Qwen2.5: the Llama layer plus biases on q, k and v (fused into linear_qkv.bias)."""

from __future__ import annotations

from megatron_toolrl.bridge import llama
from megatron_toolrl.bridge.tensor_maps import QKV, TensorMap
from megatron_toolrl.models.arch import ArchSpec


def layer_maps(arch: ArchSpec, layer: int) -> list[TensorMap]:
    hf, mc = f"model.layers.{layer}.self_attn.", f"decoder.layers.{layer}.self_attention."
    bias = QKV(mc + "linear_qkv.bias", hf + "q_proj.bias", hf + "k_proj.bias", hf + "v_proj.bias",
               arch.num_attention_heads, arch.num_kv_heads, arch.head_dim, hidden_size=None)
    return [*llama.layer_maps(arch, layer), bias]
