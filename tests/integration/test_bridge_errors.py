"""Bad input to the bridge gives an error that names what is wrong and where."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from megatron_toolrl.bridge import (
    CheckpointMeta, ShardLayout, load_hf_into_megatron, megatron_shard_state, read_hf_state, write_hf_checkpoint,
)
from megatron_toolrl.errors import CheckpointError, ModelConfigError
from megatron_toolrl.models import ModelConfig, ParallelConfig, arch_from_hf, build_model_chunks, validate_layout
from megatron_toolrl.parallel import single_process_parallel
from tests.integration.dist_scripts.bridge_tiny_models import CASES, build_hf_model, hf_config

LLAMA_UNTIED = next(c for c in CASES if c.family == "llama" and not c.tied)
LLAMA_TIED = next(c for c in CASES if c.family == "llama" and c.tied)


@pytest.fixture(scope="module")
def llama():
    """(arch, HF state dict) of the tiny untied Llama."""
    model = build_hf_model(LLAMA_UNTIED)
    config = hf_config(LLAMA_UNTIED).to_dict()
    return arch_from_hf(config), {k: v.detach().clone() for k, v in model.state_dict().items()}


def _convert(arch, state):
    return megatron_shard_state(arch, 384, state, ShardLayout.whole(arch))


def test_unknown_architecture_names_it_and_the_supported_ones():
    config = hf_config(LLAMA_UNTIED).to_dict()
    config["architectures"] = ["MistralForCausalLM"]
    with pytest.raises(ModelConfigError, match=r"unknown architecture \['MistralForCausalLM'\].*LlamaForCausalLM"):
        arch_from_hf(config)


def test_missing_tensor_is_named(llama):
    arch, state = llama
    state = dict(state)
    del state["model.layers.1.self_attn.k_proj.weight"]
    with pytest.raises(CheckpointError, match=r"missing tensors \(1\): model\.layers\.1\.self_attn\.k_proj\.weight"):
        _convert(arch, state)


def test_extra_tensor_is_named(llama):
    arch, state = llama
    state = dict(state, **{"model.layers.2.mlp.up_proj.weight": torch.zeros(96, 64)})
    with pytest.raises(CheckpointError, match=r"unexpected tensors \(1\).*2 layers: model\.layers\.2\.mlp\.up_proj"):
        _convert(arch, state)


def test_shape_mismatch_names_tensor_and_both_shapes(llama):
    arch, state = llama
    state = dict(state, **{"model.layers.0.mlp.gate_proj.weight": torch.zeros(95, 64)})
    with pytest.raises(CheckpointError, match=re.escape("model.layers.0.mlp.gate_proj.weight: shape [95, 64], "
                                                        "the config implies [96, 64]")):
        _convert(arch, state)


def test_tied_checkpoint_may_carry_lm_head_only_if_it_is_the_embedding():
    model = build_hf_model(LLAMA_TIED)
    arch = arch_from_hf(hf_config(LLAMA_TIED).to_dict())
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = state["model.embed_tokens.weight"].clone()
    _convert(arch, state)  # accepted: the head is the embedding
    state["lm_head.weight"][0, 0] += 1.0
    with pytest.raises(CheckpointError, match="lm_head.weight differs from model.embed_tokens.weight"):
        _convert(arch, state)


def test_errors_name_the_checkpoint_path(llama, tmp_path):
    arch, state = llama
    state = {k: v for k, v in state.items() if k != "model.norm.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=re.escape(str(tmp_path)) + ".*model.norm.weight"):
        _convert(arch, read_hf_state(tmp_path))


def test_unreadable_hf_dirs(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        read_hf_state(tmp_path / "absent")
    (tmp_path / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no model\.safetensors.*found pytorch_model\.bin"):
        read_hf_state(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-1.safetensors"}}))
    with pytest.raises(CheckpointError, match=r"index\.json: field 'weight_map': the index names 'model-1"):
        read_hf_state(tmp_path)
    (tmp_path / "model.safetensors.index.json").write_text("{\n  oops")
    with pytest.raises(CheckpointError, match=r"index\.json:2: not valid JSON"):
        read_hf_state(tmp_path)


def test_tp_must_divide_heads():
    arch = arch_from_hf(hf_config(LLAMA_UNTIED).to_dict())  # 4 heads, 2 KV heads
    with pytest.raises(ModelConfigError, match="TP=3 does not divide num_attention_heads=4"):
        validate_layout(arch, ModelConfig(parallel=ParallelConfig(tensor_parallel=3)))
    with pytest.raises(ModelConfigError, match="TP=4 does not divide num_key_value_heads=2"):
        validate_layout(arch, ModelConfig(parallel=ParallelConfig(tensor_parallel=4)))


def test_tp_must_divide_a_checkpoints_padded_vocab():
    """megatron pads the vocabulary to a multiple of make_vocab_size_divisible_by x TP, so the HF
    -> megatron direction always divides. What can fail is reloading a saved checkpoint at a TP
    that does not divide the row count it was saved with (here 300: make_vocab_size_divisible_by=1)."""
    arch = arch_from_hf(hf_config(LLAMA_UNTIED).to_dict())
    cfg = ModelConfig(make_vocab_size_divisible_by=1)
    meta = CheckpointMeta.for_model(arch, hf_config(LLAMA_UNTIED).to_dict(), cfg, source="test")
    assert meta.padded_vocab_size == 300
    assert meta.model_config(ParallelConfig(tensor_parallel=2)).make_vocab_size_divisible_by == 150
    with pytest.raises(ModelConfigError, match="TP=8 does not divide the checkpoint's padded vocabulary of 300"):
        meta.model_config(ParallelConfig(tensor_parallel=8))


def test_model_built_with_other_vocab_padding_is_a_named_shape_mismatch(llama):
    arch, state = llama
    with single_process_parallel():
        chunks = build_model_chunks(arch, ModelConfig(make_vocab_size_divisible_by=64), perform_initialization=False)
        with pytest.raises(CheckpointError, match=r"embedding\.word_embeddings\.weight: the megatron shard has shape "
                                                  r"\[320, 64\], the HF weights give \[384, 64\]"):
            load_hf_into_megatron(chunks, arch, ModelConfig(), state)


def test_writer_rejects_a_tensor_given_twice(tmp_path):
    bucket = [("a", torch.zeros(2)), ("a", torch.ones(2))]
    with pytest.raises(CheckpointError, match="tensor 'a' was given twice"):
        write_hf_checkpoint([bucket], tmp_path, {"architectures": ["LlamaForCausalLM"]})
