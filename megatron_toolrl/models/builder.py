"""ArchSpec + ModelConfig -> megatron-core TransformerConfig, layer spec and GPTModel chunks."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from megatron_toolrl import platform
from megatron_toolrl.errors import ModelConfigError
from megatron_toolrl.models.arch import ArchSpec
from megatron_toolrl.models.config import ModelConfig

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    return _DTYPES[name]


def have_transformer_engine() -> bool:
    try:
        import transformer_engine  # noqa: F401
    except ImportError:
        return False
    return True


def padded_vocab_size(vocab_size: int, make_divisible_by: int, tensor_parallel: int) -> int:
    """Megatron's vocabulary padding: a multiple of `make_divisible_by * TP` (Megatron-LM rule)."""
    multiple = make_divisible_by * tensor_parallel
    return ((vocab_size + multiple - 1) // multiple) * multiple


def validate_layout(arch: ArchSpec, cfg: ModelConfig) -> None:
    """Reject parallel layouts the architecture cannot be split into, naming the numbers."""
    tp, pp = cfg.parallel.tensor_parallel, cfg.parallel.pipeline_parallel
    vpp = cfg.parallel.virtual_pipeline_parallel or 1
    if arch.num_attention_heads % tp:
        raise ModelConfigError(f"TP={tp} does not divide num_attention_heads={arch.num_attention_heads}")
    if arch.num_kv_heads % tp:
        raise ModelConfigError(f"TP={tp} does not divide num_key_value_heads={arch.num_kv_heads}")
    if arch.ffn_hidden_size % tp:
        raise ModelConfigError(f"TP={tp} does not divide intermediate_size={arch.ffn_hidden_size}")
    if arch.num_layers % (pp * vpp):
        raise ModelConfigError(f"PP={pp} x VPP={vpp} does not divide num_layers={arch.num_layers}")


def build_transformer_config(arch: ArchSpec, cfg: ModelConfig, *, perform_initialization: bool = True):
    """The TransformerConfig for `arch` under `cfg` (layout validated first)."""
    from megatron.core.transformer.transformer_config import TransformerConfig

    validate_layout(arch, cfg)
    # Fused kernels (TE/apex/CUDA) with the TransformerEngine spec only: the local spec is the
    # pure-torch path that also runs on CPU.
    fused = cfg.transformer_impl == "transformer_engine"
    dtype = torch_dtype(cfg.precision.params_dtype)
    fp8 = cfg.precision.fp8
    recompute = (
        dict(recompute_granularity="full", recompute_method="uniform", recompute_num_layers=1)
        if cfg.recompute_activations
        else {}
    )
    return TransformerConfig(
        num_layers=arch.num_layers,
        hidden_size=arch.hidden_size,
        ffn_hidden_size=arch.ffn_hidden_size,
        num_attention_heads=arch.num_attention_heads,
        num_query_groups=arch.num_kv_heads,
        kv_channels=arch.head_dim,
        gated_linear_unit=True,
        activation_func=F.silu,
        normalization="RMSNorm",
        layernorm_epsilon=arch.norm_eps,
        add_bias_linear=False,
        add_qkv_bias=arch.qkv_bias,
        qk_layernorm=arch.qk_norm,
        attention_softmax_in_fp32=True,
        hidden_dropout=cfg.hidden_dropout,
        attention_dropout=cfg.attention_dropout,
        params_dtype=dtype,
        pipeline_dtype=dtype,
        bf16=dtype is torch.bfloat16,
        fp16=dtype is torch.float16,
        tensor_model_parallel_size=cfg.parallel.tensor_parallel,
        pipeline_model_parallel_size=cfg.parallel.pipeline_parallel,
        virtual_pipeline_model_parallel_size=cfg.parallel.virtual_pipeline_parallel,
        sequence_parallel=cfg.parallel.sequence_parallel,
        # Without CUDA, weights are created on the CPU and every fused kernel is off (they are
        # CUDA/apex/TE kernels); on GPUs megatron's defaults stand.
        use_cpu_initialization=not platform.has_cuda(),
        perform_initialization=perform_initialization,
        bias_activation_fusion=fused,
        bias_dropout_fusion=fused,
        masked_softmax_fusion=fused,
        apply_rope_fusion=fused,
        gradient_accumulation_fusion=False,
        persist_layer_norm=fused,
        fp8=fp8,
        fp8_recipe=cfg.precision.fp8_recipe if fp8 else "delayed",
        fp8_amax_history_len=cfg.precision.fp8_amax_history_len,
        fp8_amax_compute_algo=cfg.precision.fp8_amax_compute_algo,
        fp8_param=cfg.precision.fp8_param_gather if fp8 else False,
        **recompute,
    )


def layer_spec_fn(arch: ArchSpec, cfg: ModelConfig) -> Callable[[], object]:
    """The megatron layer-spec constructor for `cfg.transformer_impl`, ready to call.

    Returned uncalled so that config tests can check the choice on machines without
    TransformerEngine (building the TE spec imports TE).
    """
    from megatron.core.models.gpt import gpt_layer_specs

    if cfg.transformer_impl == "local":

        def local_spec() -> object:
            spec = gpt_layer_specs.get_gpt_layer_local_spec(normalization="RMSNorm", qk_layernorm=arch.qk_norm)
            if cfg.local_attention == "sdpa":
                from megatron_toolrl.models.sdpa_attention import SDPADotProductAttention

                spec.submodules.self_attention.submodules.core_attention = SDPADotProductAttention
            return spec

        return local_spec

    def te_spec() -> object:
        if not have_transformer_engine():
            raise ModelConfigError(
                "transformer_impl: transformer_engine needs TransformerEngine (pip install "
                "'megatron_toolrl[gpu]' on a CUDA machine); use transformer_impl: local on CPU"
            )
        return gpt_layer_specs.get_gpt_layer_with_transformer_engine_spec(qk_layernorm=arch.qk_norm)

    return te_spec


def build_model_chunks(arch: ArchSpec, cfg: ModelConfig, *, perform_initialization: bool = True) -> list:
    """The GPTModel chunk(s) of this rank: one, or `virtual_pipeline_parallel` when interleaved.

    megatron's parallel state must be initialised first (see megatron_toolrl.parallel).
    """
    from megatron.core import parallel_state
    from megatron.core.models.gpt.gpt_model import GPTModel

    platform.install_cpu_shims()
    if cfg.transformer_impl == "transformer_engine" and not have_transformer_engine():
        # Checked first: megatron's own complaint (about rope fusion) would not name the cause.
        layer_spec_fn(arch, cfg)()
    config = build_transformer_config(arch, cfg, perform_initialization=perform_initialization)
    spec = layer_spec_fn(arch, cfg)()
    vocab = padded_vocab_size(arch.vocab_size, cfg.make_vocab_size_divisible_by, cfg.parallel.tensor_parallel)
    vpp = cfg.parallel.virtual_pipeline_parallel
    if vpp:
        # Interleaved stages form a ring; at PP=2 a rank then sends an activation and a gradient
        # of the same shape to the same peer in one batched isend/irecv, which pairs them by
        # posting order and swaps them (seen on gloo: wrong losses from the third micro-batch
        # on). Unbatched P2P, as Megatron-LM uses for interleaved schedules.
        config.batch_p2p_comm = False
    chunks = []
    for vp_stage in range(vpp or 1):
        stage = vp_stage if vpp else None
        # Tied embeddings under PP: megatron copies the first stage's embedding to the last stage
        # with `weight.data.cuda()`; cuda_to_cpu keeps it on the CPU without CUDA.
        with platform.cuda_to_cpu():
            chunk = GPTModel(
                config=config,
                transformer_layer_spec=spec,
                vocab_size=vocab,
                max_sequence_length=arch.max_position_embeddings,
                pre_process=parallel_state.is_pipeline_first_stage(ignore_virtual=vpp is None, vp_stage=stage),
                post_process=parallel_state.is_pipeline_last_stage(ignore_virtual=vpp is None, vp_stage=stage),
                share_embeddings_and_output_weights=arch.tie_word_embeddings,
                position_embedding_type="rope",
                rotary_base=int(arch.rope_theta),
                rope_scaling=arch.llama3_rope_factor is not None,
                rope_scaling_factor=arch.llama3_rope_factor or 8.0,
                parallel_output=True,
                vp_stage=stage,
            )
        _cast_params(chunk, config.params_dtype)
        chunks.append(chunk)
    return chunks


def _cast_params(chunk: torch.nn.Module, dtype: torch.dtype) -> None:
    """Every floating parameter in `dtype`, as Megatron-LM's Float16Module and TE's layers give.

    The local spec builds its norms in fp32 whatever params_dtype says. A bf16 model with fp32
    norms then runs every RMSNorm unfused (mixed input/weight dtypes), and megatron's
    Float16OptimizerWithFloat16Params cannot checkpoint it: it keeps the fp32 params in a group
    of their own that its sharded_state_dict does not map ("Param id N does not match any model
    sharded param"). Parameters only: buffers such as rotary frequencies stay as built.
    """
    if dtype == torch.float32:
        return
    for param in chunk.parameters():
        if param.dtype.is_floating_point and param.dtype != dtype:
            param.data = param.data.to(dtype)


def count_parameters_on_meta(arch: ArchSpec, cfg: ModelConfig | None = None, *, unpadded_vocab: bool = True) -> int:
    """Parameter count of the megatron model, built on the meta device (no memory, any size).

    Single-process view (TP=PP=1). With `unpadded_vocab`, the rows megatron adds to pad the
    vocabulary are not counted, so the number compares with published HF counts.
    """
    from megatron_toolrl.parallel import single_process_parallel

    cfg = cfg or ModelConfig()
    with single_process_parallel(), torch.device("meta"):
        (model,) = build_model_chunks(arch, cfg, perform_initialization=False)
    total = sum(p.numel() for p in model.parameters())
    if unpadded_vocab:
        padding = padded_vocab_size(arch.vocab_size, cfg.make_vocab_size_divisible_by, 1) - arch.vocab_size
        total -= padding * arch.hidden_size * (1 if arch.tie_word_embeddings else 2)
    return total

