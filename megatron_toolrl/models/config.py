"""Typed config for how a model is laid out and computed (parallelism, precision, kernels)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from megatron_toolrl.errors import ModelConfigError

Dtype = Literal["fp32", "bf16", "fp16"]


@dataclass
class ParallelConfig:
    """Megatron model parallelism. Data parallelism is whatever is left of the world size."""

    tensor_parallel: int = 1
    """TP degree: attention heads, MLP columns and the vocabulary are split across this many ranks."""
    pipeline_parallel: int = 1
    """PP degree: consecutive layers are placed on this many stages."""
    virtual_pipeline_parallel: int | None = None
    """Model chunks per pipeline stage (interleaved 1F1B). None = not interleaved."""
    sequence_parallel: bool = False
    """Megatron sequence parallelism (needs TransformerEngine or apex norms: GPU only)."""

    def __post_init__(self) -> None:
        for name in ("tensor_parallel", "pipeline_parallel"):
            if getattr(self, name) < 1:
                raise ModelConfigError(f"parallel.{name} must be >= 1, got {getattr(self, name)}")
        if self.virtual_pipeline_parallel is not None:
            if self.virtual_pipeline_parallel < 1:
                raise ModelConfigError("parallel.virtual_pipeline_parallel must be >= 1 or null")
            if self.pipeline_parallel < 2 and self.virtual_pipeline_parallel > 1:
                raise ModelConfigError("parallel.virtual_pipeline_parallel > 1 needs pipeline_parallel >= 2")

    @property
    def model_parallel_size(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel


@dataclass
class PrecisionConfig:
    """Parameter dtype and FP8. FP8 needs TransformerEngine on Hopper/Blackwell GPUs."""

    params_dtype: Dtype = "fp32"
    """Dtype of the model's parameters. With bf16/fp16 the megatron optimizer keeps fp32 master
    weights. fp32 is the CPU test default (exact comparisons); bf16 is the GPU default."""
    fp8: Literal["e4m3", "hybrid"] | None = None
    """TransformerEngine FP8 format: e4m3 everywhere, or hybrid (e4m3 forward, e5m2 gradients).
    None = no FP8. Only with transformer_impl='transformer_engine'."""
    fp8_recipe: Literal["delayed", "tensorwise", "mxfp8", "blockwise"] = "delayed"
    """TE scaling recipe: 'delayed' (amax history; Hopper), 'tensorwise' (current scaling),
    'mxfp8' (Blackwell), 'blockwise'. Default: megatron-core's default."""
    fp8_amax_history_len: int = 1024
    """Steps of amax history for the delayed recipe (NeMo's FP8 recipes; megatron-core's own default is 1)."""
    fp8_amax_compute_algo: Literal["max", "most_recent"] = "max"
    """How the scale is derived from the amax history (NeMo's FP8 recipes; megatron-core's own default is most_recent)."""
    fp8_param_gather: bool = False
    """Keep parameters in FP8 for the distributed optimizer's all-gather (saves memory and bandwidth)."""

    def __post_init__(self) -> None:
        if self.fp8_amax_history_len < 1:
            raise ModelConfigError("precision.fp8_amax_history_len must be >= 1")
        if self.fp8 is not None and self.params_dtype == "fp32":
            raise ModelConfigError("precision.fp8 needs params_dtype bf16 or fp16 (FP8 GEMMs run under a 16-bit model)")


@dataclass
class ModelConfig:
    """How to build the megatron model of an HF architecture."""

    transformer_impl: Literal["local", "transformer_engine"] = "local"
    """Layer spec: 'local' (pure torch; the CPU path CI runs) or 'transformer_engine' (fused
    TE kernels, FP8; GPU clusters). Both give the same math and the same bridge mapping."""
    local_attention: Literal["sdpa", "unfused"] = "sdpa"
    """Core attention of the local spec: 'sdpa' (torch's fused scaled_dot_product_attention,
    causal, GQA without repeating KV heads) or 'unfused' (megatron's DotProductAttention: fp32
    score matrix and explicit mask). Same math; sdpa is faster (bench/profile_grpo_update.py).
    The TransformerEngine spec uses TE's own attention and ignores this."""
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    make_vocab_size_divisible_by: int = 128
    """Megatron pads the vocabulary to a multiple of this times TP (Megatron-LM's default)."""
    recompute_activations: bool = False
    """Full activation recomputation of every layer (memory for compute; useful for 14B-32B)."""
    attention_dropout: float = 0.0
    hidden_dropout: float = 0.0
    """Dropout is off for RL fine-tuning: the policy's logprobs must be deterministic."""

    def __post_init__(self) -> None:
        if isinstance(self.parallel, dict):
            self.parallel = ParallelConfig(**self.parallel)
        if isinstance(self.precision, dict):
            self.precision = PrecisionConfig(**self.precision)
        if self.precision.fp8 is not None and self.transformer_impl != "transformer_engine":
            raise ModelConfigError("precision.fp8 needs transformer_impl: transformer_engine")
        if self.parallel.sequence_parallel and self.transformer_impl != "transformer_engine":
            raise ModelConfigError("parallel.sequence_parallel needs transformer_impl: transformer_engine "
                                   "(the local spec's torch norms do not support it)")
        if self.local_attention not in ("sdpa", "unfused"):
            raise ModelConfigError(f"local_attention must be 'sdpa' or 'unfused', got {self.local_attention!r}")
        if self.make_vocab_size_divisible_by < 1:
            raise ModelConfigError("make_vocab_size_divisible_by must be >= 1")
