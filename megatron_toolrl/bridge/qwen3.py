"""Qwen3 (dense): the Llama layer plus per-head RMSNorm on queries and keys (replicated, head_dim wide)."""

from __future__ import annotations

from megatron_toolrl.bridge import llama
from megatron_toolrl.bridge.tensor_maps import Replicated, TensorMap
from megatron_toolrl.models.arch import ArchSpec


def layer_maps(arch: ArchSpec, layer: int) -> list[TensorMap]:
    hf, mc = f"model.layers.{layer}.self_attn.", f"decoder.layers.{layer}.self_attention."
    return [
        *llama.layer_maps(arch, layer),
        Replicated(mc + "q_layernorm.weight", hf + "q_norm.weight", (arch.head_dim,)),
        Replicated(mc + "k_layernorm.weight", hf + "k_norm.weight", (arch.head_dim,)),
    ]
