"""HF config -> megatron-core TransformerConfig, layer spec and GPTModel (llama, qwen2, qwen3)."""

from megatron_toolrl.models.arch import ARCHITECTURES, ArchSpec, arch_from_hf, load_hf_config
from megatron_toolrl.models.builder import (
    build_model_chunks,
    build_transformer_config,
    count_parameters_on_meta,
    layer_spec_fn,
    padded_vocab_size,
    torch_dtype,
    validate_layout,
)
from megatron_toolrl.models.config import ModelConfig, ParallelConfig, PrecisionConfig
from megatron_toolrl.models.presets import PRESETS, Preset, get_preset

__all__ = [
    "ARCHITECTURES", "ArchSpec", "arch_from_hf", "load_hf_config", "build_model_chunks", "build_transformer_config",
    "count_parameters_on_meta", "layer_spec_fn", "padded_vocab_size", "torch_dtype", "validate_layout",
    "ModelConfig", "ParallelConfig", "PrecisionConfig", "PRESETS", "Preset", "get_preset",
]
