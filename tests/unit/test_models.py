"""megatron_toolrl.models: HF config -> ArchSpec -> TransformerConfig / layer spec / GPTModel.

References are independent of the code under test: the parameter counts the model cards publish,
HF transformers' own rotary embeddings, megatron-core's own TransformerConfig.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from megatron_toolrl.errors import ModelConfigError
from megatron_toolrl.models import (
    PRESETS, ModelConfig, ParallelConfig, PrecisionConfig, arch_from_hf, build_model_chunks,
    build_transformer_config, count_parameters_on_meta, layer_spec_fn, padded_vocab_size, validate_layout,
)
from megatron_toolrl.parallel import single_process_parallel


def small(preset: str, **overrides):
    """A preset's architecture (rope, bias, norms, tying) at a size that builds in milliseconds."""
    arch = arch_from_hf(PRESETS[preset].hf_config)
    dims = dict(num_layers=2, hidden_size=128, ffn_hidden_size=256, num_attention_heads=4, num_kv_heads=2,
                head_dim=32, vocab_size=1000)
    return dataclasses.replace(arch, **{**dims, **overrides})


@pytest.fixture(scope="module")
def megatron_tp1():
    with single_process_parallel():
        yield


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_parameter_count_on_meta_matches_published(name):
    preset = PRESETS[name]
    counted = count_parameters_on_meta(arch_from_hf(preset.hf_config))
    assert abs(counted - preset.published_params) <= 0.005 * preset.published_params, (counted, preset.published_params)


def test_local_transformer_config():
    arch = arch_from_hf(PRESETS["qwen2.5-7b"].hf_config)
    tc = build_transformer_config(arch, ModelConfig(precision=PrecisionConfig(params_dtype="bf16")))
    assert (tc.num_layers, tc.hidden_size, tc.ffn_hidden_size) == (28, 3584, 18944)
    assert (tc.num_attention_heads, tc.num_query_groups, tc.kv_channels) == (28, 4, 128)
    assert tc.gated_linear_unit and tc.normalization == "RMSNorm" and tc.layernorm_epsilon == 1e-6
    assert tc.add_qkv_bias and not tc.add_bias_linear and not tc.qk_layernorm
    assert tc.params_dtype is torch.bfloat16 and tc.bf16 and not tc.fp16
    # No CUDA kernels on the local spec.
    assert not (tc.bias_activation_fusion or tc.masked_softmax_fusion or tc.apply_rope_fusion or tc.persist_layer_norm)
    assert tc.fp8 is None
    assert tc.use_cpu_initialization is (not torch.cuda.is_available())


@pytest.fixture
def te_fused_rope_stand_in(monkeypatch):
    """Stand-in for TransformerEngine's fused rope kernel, whose presence megatron-core's
    TransformerConfig checks when apply_rope_fusion is on. TE cannot be installed on this CPU-only
    machine; the stand-in is only looked up, never called, and lets the config be validated."""
    import megatron.core.models.common.embeddings.rope_utils as rope_utils

    def te_fused_rope_not_installed(*args, **kwargs):
        raise AssertionError("stand-in for TE's fused rope: never called by config building")

    monkeypatch.setattr(rope_utils, "fused_apply_rotary_pos_emb", te_fused_rope_not_installed)


@pytest.mark.parametrize("fp8", ["e4m3", "hybrid"])
@pytest.mark.parametrize("recipe", ["delayed", "tensorwise", "mxfp8", "blockwise"])
def test_transformer_engine_config_hands_fp8_to_megatron(fp8, recipe, te_fused_rope_stand_in):
    arch = arch_from_hf(PRESETS["llama-3.1-8b"].hf_config)
    precision = PrecisionConfig(params_dtype="bf16", fp8=fp8, fp8_recipe=recipe, fp8_amax_history_len=16,
                                fp8_amax_compute_algo="most_recent", fp8_param_gather=True)
    tc = build_transformer_config(arch, ModelConfig(transformer_impl="transformer_engine", precision=precision))
    assert (tc.fp8, tc.fp8_recipe, tc.fp8_amax_history_len, tc.fp8_amax_compute_algo) == (fp8, recipe, 16, "most_recent")
    assert tc.fp8_param is True
    assert tc.bias_activation_fusion and tc.masked_softmax_fusion and tc.apply_rope_fusion and tc.persist_layer_norm


def test_transformer_engine_without_fp8_keeps_defaults(te_fused_rope_stand_in):
    arch = arch_from_hf(PRESETS["qwen2.5-1.5b"].hf_config)
    tc = build_transformer_config(arch, ModelConfig(transformer_impl="transformer_engine",
                                                    precision=PrecisionConfig(params_dtype="bf16")))
    assert tc.fp8 is None and tc.fp8_param is False


def test_fp8_needs_transformer_engine_and_16_bit_params():
    with pytest.raises(ModelConfigError, match="fp8 needs params_dtype bf16 or fp16"):
        PrecisionConfig(fp8="e4m3")
    with pytest.raises(ModelConfigError, match="precision.fp8 needs transformer_impl: transformer_engine"):
        ModelConfig(precision=PrecisionConfig(params_dtype="bf16", fp8="hybrid"))
    with pytest.raises(ModelConfigError, match="fp8_amax_history_len must be >= 1"):
        PrecisionConfig(fp8_amax_history_len=0)


def test_transformer_engine_spec_on_cpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this checks the CPU-only machine's message")
    arch = arch_from_hf(PRESETS["qwen2.5-0.5b"].hf_config)
    spec = layer_spec_fn(arch, ModelConfig(transformer_impl="transformer_engine"))  # choosing it is fine
    with pytest.raises(ModelConfigError, match="needs TransformerEngine.*use transformer_impl: local on CPU"):
        spec()


def test_qkv_bias_only_for_qwen2_and_qk_norm_only_for_qwen3(megatron_tp1):
    for preset, bias, qk_norm in [("qwen2.5-0.5b", True, False), ("llama-3.2-1b", False, False)]:
        arch = arch_from_hf(PRESETS[preset].hf_config)
        assert (arch.qkv_bias, arch.qk_norm) == (bias, qk_norm)
    qwen3 = arch_from_hf({**PRESETS["qwen2.5-0.5b"].hf_config, "architectures": ["Qwen3ForCausalLM"], "head_dim": 64})
    assert (qwen3.family, qwen3.qkv_bias, qwen3.qk_norm, qwen3.head_dim) == ("qwen3", False, True, 64)

    for arch in (small("qwen2.5-0.5b"), small("llama-3.2-1b"), dataclasses.replace(small("qwen2.5-0.5b"),
                                                                                     **_as_qwen3())):
        (model,) = build_model_chunks(arch, ModelConfig(), perform_initialization=False)
        names = dict(model.named_parameters())
        assert ("decoder.layers.0.self_attention.linear_qkv.bias" in names) == arch.qkv_bias
        assert ("decoder.layers.0.self_attention.q_layernorm.weight" in names) == arch.qk_norm
        if arch.qk_norm:
            assert names["decoder.layers.0.self_attention.k_layernorm.weight"].shape == (arch.head_dim,)


def _as_qwen3() -> dict:
    return dict(family="qwen3", hf_architecture="Qwen3ForCausalLM", qkv_bias=False, qk_norm=True)


def _megatron_inv_freq(arch) -> torch.Tensor:
    (model,) = build_model_chunks(arch, ModelConfig(), perform_initialization=False)
    return model.rotary_pos_emb.inv_freq.float()


@pytest.mark.parametrize("preset", ["smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b", "llama-3.1-8b"])
def test_rope_frequencies_equal_hf(preset, megatron_tp1):
    """rope theta and Llama-3 scaling reach megatron: its inverse frequencies equal HF's."""
    from transformers import AutoConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    hf_cfg = PRESETS[preset].hf_config
    arch = arch_from_hf(hf_cfg)
    hf = AutoConfig.for_model(**{k: v for k, v in hf_cfg.items() if k != "architectures"})
    expected = LlamaRotaryEmbedding(hf).inv_freq.float()
    theta_only = dict(num_layers=1, hidden_size=arch.num_attention_heads * 8, ffn_hidden_size=64, vocab_size=128)
    got = _megatron_inv_freq(dataclasses.replace(arch, **theta_only))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    assert (arch.llama3_rope_factor is not None) == ("rope_scaling" in hf_cfg)


def test_unsupported_rope_scaling_is_rejected():
    base = PRESETS["llama-3.2-1b"].hf_config
    with pytest.raises(ModelConfigError, match="rope scaling 'yarn' is not supported"):
        arch_from_hf({**base, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    odd = {**base["rope_scaling"], "high_freq_factor": 2.0}
    with pytest.raises(ModelConfigError, match="high_freq_factor=2.0 is not supported"):
        arch_from_hf({**base, "rope_scaling": odd})


def test_tied_embeddings_have_no_output_weight(megatron_tp1):
    for tied in (True, False):
        arch = dataclasses.replace(small("qwen2.5-0.5b"), tie_word_embeddings=tied)
        (model,) = build_model_chunks(arch, ModelConfig(), perform_initialization=False)
        names = dict(model.named_parameters())
        assert ("output_layer.weight" in names) == (not tied)
        # Counted without the padding rows, a tied model has one embedding matrix fewer.
        padded_rows = padded_vocab_size(arch.vocab_size, 128, 1)
        assert names["embedding.word_embeddings.weight"].shape == (padded_rows, arch.hidden_size)
    untied = count_parameters_on_meta(dataclasses.replace(small("qwen2.5-0.5b"), tie_word_embeddings=False))
    tied_count = count_parameters_on_meta(small("qwen2.5-0.5b"))
    assert untied - tied_count == 1000 * 128


def test_vocab_padding():
    assert padded_vocab_size(300, 128, 1) == 384
    assert padded_vocab_size(300, 128, 2) == 512
    assert padded_vocab_size(49152, 128, 1) == 49152
    assert padded_vocab_size(151936, 128, 8) == 152576
    assert padded_vocab_size(300, 1, 1) == 300
    with pytest.raises(ModelConfigError, match="make_vocab_size_divisible_by must be >= 1"):
        ModelConfig(make_vocab_size_divisible_by=0)


def test_parallel_layout_validation():
    arch = arch_from_hf(PRESETS["qwen2.5-1.5b"].hf_config)  # 12 heads, 2 KV heads, 28 layers, ffn 8960
    validate_layout(arch, ModelConfig(parallel=ParallelConfig(tensor_parallel=2, pipeline_parallel=4)))
    cases = [
        (dict(tensor_parallel=5), "TP=5 does not divide num_attention_heads=12"),
        (dict(tensor_parallel=4), "TP=4 does not divide num_key_value_heads=2"),
        (dict(pipeline_parallel=3), r"PP=3 x VPP=1 does not divide num_layers=28"),
        (dict(pipeline_parallel=2, virtual_pipeline_parallel=4), r"PP=2 x VPP=4 does not divide num_layers=28"),
    ]
    for parallel, message in cases:
        with pytest.raises(ModelConfigError, match=message):
            validate_layout(arch, ModelConfig(parallel=ParallelConfig(**parallel)))
    odd_ffn = dataclasses.replace(arch, ffn_hidden_size=8961)
    with pytest.raises(ModelConfigError, match="TP=2 does not divide intermediate_size=8961"):
        validate_layout(odd_ffn, ModelConfig(parallel=ParallelConfig(tensor_parallel=2)))
    with pytest.raises(ModelConfigError, match="parallel.tensor_parallel must be >= 1, got 0"):
        ParallelConfig(tensor_parallel=0)
    with pytest.raises(ModelConfigError, match="virtual_pipeline_parallel > 1 needs pipeline_parallel >= 2"):
        ParallelConfig(virtual_pipeline_parallel=2)
    with pytest.raises(ModelConfigError, match="sequence_parallel needs transformer_impl: transformer_engine"):
        ModelConfig(parallel=ParallelConfig(tensor_parallel=2, sequence_parallel=True))
    assert ModelConfig(parallel={"tensor_parallel": 2}).parallel.tensor_parallel == 2


def test_bad_hf_configs_are_named(tmp_path):
    base = PRESETS["smollm2-135m"].hf_config
    with pytest.raises(ModelConfigError, match=r"unknown architecture \['GPT2LMHeadModel'\]"):
        arch_from_hf({**base, "architectures": ["GPT2LMHeadModel"]})
    with pytest.raises(ModelConfigError, match="hidden_act 'gelu' is not supported"):
        arch_from_hf({**base, "hidden_act": "gelu"})
    with pytest.raises(ModelConfigError, match="num_attention_heads=9 is not a multiple of num_key_value_heads=2"):
        arch_from_hf({**base, "num_key_value_heads": 2})
    with pytest.raises(ModelConfigError, match="attention_bias/mlp_bias are not supported"):
        arch_from_hf({**base, "attention_bias": True})
    with pytest.raises(ModelConfigError, match="config has no 'intermediate_size'"):
        arch_from_hf({k: v for k, v in base.items() if k != "intermediate_size"})
    with pytest.raises(ModelConfigError, match="no config.json"):
        arch_from_hf(tmp_path)
    (tmp_path / "config.json").write_text('{\n"architectures": [\n')
    with pytest.raises(ModelConfigError, match=r"config.json:3: not valid JSON"):
        arch_from_hf(tmp_path)


def test_building_a_te_model_without_te_names_the_missing_package():
    """On this CPU machine (no TransformerEngine) the TE spec fails with our message, not megatron's."""
    from megatron_toolrl.errors import ModelConfigError
    from megatron_toolrl.models import ModelConfig, arch_from_hf, build_model_chunks, get_preset
    from megatron_toolrl.models.builder import have_transformer_engine
    from megatron_toolrl.parallel import single_process_parallel

    if have_transformer_engine():
        pytest.skip("TransformerEngine is installed here")
    arch = arch_from_hf(get_preset("smollm2-135m").hf_config)
    with single_process_parallel(), pytest.raises(ModelConfigError, match="needs TransformerEngine"):
        build_model_chunks(arch, ModelConfig(transformer_impl="transformer_engine"))
