"""The launch planner: parameter counts, memory formulas, layouts and refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.launch import memory, planner
from megatron_toolrl.launch.config import LaunchConfig, load_launch_config
from megatron_toolrl.launch.gpus import GPUS
from megatron_toolrl.launch.planner import PlanError, plan
from megatron_toolrl.launch.throughput import Assumptions, kv_bytes_per_token
from megatron_toolrl.models import PRESETS, arch_from_hf, count_parameters_on_meta

GB = 1e9


def arch(name: str):
    return arch_from_hf(PRESETS[name].hf_config)


# ------------------------------------------------------------------------------ parameter counts


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_analytic_count_equals_the_published_count(name):
    assert memory.count_parameters(arch(name)) == PRESETS[name].published_params


@pytest.mark.parametrize("name", ["qwen2.5-1.5b", "qwen2.5-32b", "llama-3.2-1b"])
def test_analytic_count_equals_megatrons_module_tree(name):
    a = arch(name)
    assert memory.count_parameters(a) == count_parameters_on_meta(a)
    # At TP=PP=1 the GPU holds the whole model with megatron's padded vocabulary.
    assert memory.params_per_gpu(a, 1, 1) == count_parameters_on_meta(a, unpadded_vocab=False)


def test_params_per_gpu_splits_layers_and_vocabulary_by_hand():
    a = arch("qwen2.5-1.5b")  # h=1536, f=8960, 28 layers, 12 heads, 2 KV heads, head_dim 128, V=151936, tied
    split = 1536 * 1536 * 2 + 2 * 1536 * 256 + (1536 + 512) + 3 * 1536 * 8960  # q, o, k+v, qkv bias, MLP
    replicated = 2 * 1536
    vocab_rows = 152064 // 2  # 151936 padded to a multiple of 128 * TP=2 = 256 -> 152064
    # TP=2, PP=2: the first stage has the embedding, the last a tied copy of it plus the final norm.
    expected_last = 14 * (split // 2 + replicated) + vocab_rows * 1536 + 1536
    assert memory.params_per_gpu(a, 2, 2) == expected_last


# ------------------------------------------------------------------------------ memory formulas


def test_weight_grad_optimizer_bytes_are_megatrons_6_plus_12_over_dp():
    assert memory.weight_grad_optimizer_bytes(1000, 4, True) == (2000.0, 4000.0, 3000.0)
    assert memory.weight_grad_optimizer_bytes(1000, 4, False) == (2000.0, 4000.0, 12000.0)


def test_activation_formula_reduces_to_korthikanti_for_a_gpt_layer():
    s, b, h, a = 2048, 2, 1024, 16
    gpt = memory.ActivationShape(hidden=h, heads=a, q_width=h, kv_width=h, ffn=4 * h, gated_mlp=False, dropout=True,
                                 flash_attention=False)
    assert memory.layer_activation_bytes(gpt, s, b, 1, False) == pytest.approx(s * b * h * (34 + 5 * a * s / h))
    t = 8
    assert memory.layer_activation_bytes(gpt, s, b, t, False) == pytest.approx(
        s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))
    assert memory.layer_activation_bytes(gpt, s, b, t, True) == pytest.approx(s * b * h / t * (34 + 5 * a * s / h))
    assert memory.layer_input_bytes(h, s, b, t, False) == 2 * s * b * h


def test_activation_bytes_of_a_small_gqa_swiglu_case_by_hand():
    shape = memory.ActivationShape(hidden=8, heads=2, q_width=8, kv_width=4, ffn=16)
    # s=4, b=1, t=2, no SP: replicated 4*1*8*8 = 256; split 4*1*(4*(8+4) + 6*16) / 2 = 288.
    assert memory.layer_activation_bytes(shape, 4, 1, 2, False) == 544
    # Without flash attention the scores add 2*a*s^2*b / t = 2*2*16*1/2 = 32.
    assert memory.layer_activation_bytes(replace(shape, flash_attention=False), 4, 1, 2, False) == 576
    # 6 layers, PP=3, enough micro batches: 2 layers x 3 in flight = all 6 layers' worth.
    assert memory.activation_bytes(shape, 6, 4, 1, 2, 3, False, False) == 6 * 544
    # Only one micro batch in flight: that stage's 2 layers.
    assert memory.activation_bytes(shape, 6, 4, 1, 2, 3, False, False, microbatches_in_flight=1) == 2 * 544
    # Full recompute: 2*s*b*h = 64 per kept layer, plus one layer being recomputed.
    assert memory.activation_bytes(shape, 6, 4, 1, 2, 3, False, True) == 6 * 64 + 544
    assert memory.logits_bytes(100, 4, 1, 2) == 6 * 4 * 256 / 2  # V padded to 128 * 2


def test_kv_cache_bytes_per_token():
    a = arch("qwen2.5-32b")  # 64 layers, 8 KV heads, head_dim 128
    assert kv_bytes_per_token(a) == 2 * 64 * 8 * 128 * 2


# ------------------------------------------------------------------------------ layouts


def test_qwen2_5_1_5b_fits_one_node_without_model_parallelism():
    p = plan(LaunchConfig(model="qwen2.5-1.5b"), 1)
    assert (p.layout.tp, p.layout.pp, p.layout.full_recompute) == (1, 1, False)
    assert p.split.colocated_node and p.split.trainer_gpus + p.split.rollout_gpus == 8
    assert p.layout.dp == p.split.trainer_gpus
    assert p.engines.tensor_parallel == 1 and p.engines.engines == p.split.rollout_gpus
    assert p.layout.memory.fits and p.layout.memory.total < 0.5 * 80 * GB


def test_qwen2_5_7b_layouts_are_sensible():
    one = plan(LaunchConfig(model="qwen2.5-7b"), 1)
    assert one.layout.memory.fits
    assert one.layout.tp * one.layout.pp * one.layout.dp == one.split.trainer_gpus
    # 7B has 4 KV heads: TP 8 is impossible, and a single GPU cannot hold 7B with Adam.
    assert one.layout.tp in (1, 2, 4)
    with pytest.raises(PlanError, match="does not divide"):
        plan(LaunchConfig(model="qwen2.5-7b", tensor_parallel=8), 4)


def test_qwen2_5_32b_needs_model_parallelism_and_several_nodes():
    with pytest.raises(PlanError) as err:
        plan(LaunchConfig(model="qwen2.5-32b", tensor_parallel=1, pipeline_parallel=1), 4)
    message = str(err.value)
    assert "does not fit on 4 node(s) of 8x h100-80gb with the forced layout TP=1 PP=1" in message
    assert "GB usable" in message
    four = plan(LaunchConfig(model="qwen2.5-32b"), 4)
    assert four.layout.tp * four.layout.pp >= 8  # 32B: 65 GB of bf16 weights alone exceed any TP<8 x PP=1 share
    assert four.layout.memory.fits and four.split.rollout_nodes >= 1
    assert four.engines.tensor_parallel >= 2  # 65 GB of weights do not leave half of one 80 GB GPU for KV
    for considered in four.considered:
        if considered.tp * considered.pp < four.layout.tp * four.layout.pp:
            assert not considered.memory.fits, "a smaller model-parallel layout that fits was skipped"
    with pytest.raises(PlanError, match=r"does not fit on 1 node.*; it fits on \d+ nodes"):
        plan(LaunchConfig(model="qwen2.5-32b"), 1)


def test_smaller_gpus_need_more_parallelism():
    h100 = plan(LaunchConfig(model="qwen2.5-32b", gpu="h100-80gb"), 8)
    a100 = plan(LaunchConfig(model="qwen2.5-32b", gpu="a100-40gb"), 8)
    assert a100.layout.tp * a100.layout.pp >= h100.layout.tp * h100.layout.pp
    assert a100.engines.tensor_parallel > h100.engines.tensor_parallel


def test_full_recompute_is_used_only_where_needed():
    free = plan(LaunchConfig(model="qwen2.5-1.5b", recompute="auto"), 2)
    assert not free.layout.full_recompute
    forced = plan(LaunchConfig(model="qwen2.5-1.5b", recompute="full"), 2)
    assert forced.layout.full_recompute and forced.layout.memory.activations < free.layout.memory.activations
    assert forced.step.training_s == pytest.approx(free.step.training_s * 4 / 3, rel=1e-9)


def test_step_time_uses_the_stated_assumptions():
    cfg = LaunchConfig(model="qwen2.5-7b", rollout_nodes=1)  # fixed split: faster training would change the best one
    base = plan(cfg, 4)
    faster = plan(cfg, 4, Assumptions(train_mfu=0.70))
    assert faster.layout == base.layout
    assert faster.step.training_s == pytest.approx(base.step.training_s / 2)
    assert base.step.training_s == pytest.approx(3 * base.step.logprob_s)
    assert base.step.total_s == pytest.approx(base.step.generation_s + base.step.logprob_s + base.step.training_s
                                              + base.step.weight_sync_s)


def test_every_gpu_of_the_table_plans_qwen2_5_1_5b():
    for gpu in GPUS:
        assert plan(LaunchConfig(model="qwen2.5-1.5b", gpu=gpu), 2).layout.memory.fits


# ------------------------------------------------------------------------------ CLI and config


def test_cli_json_and_refusal(capsys):
    assert planner.main(["--model", "qwen2.5-32b", "--gpu", "h100-80gb", "--gpus-per-node", "8", "--nodes", "4",
                         "--json", "--seq-len", "2048", "--micro-batch", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"]["params"] == PRESETS["qwen2.5-32b"].published_params
    assert out["inputs"]["seq_len"] == 2048 and out["inputs"]["micro_batch"] == 2
    lay = out["layout"]
    assert lay["tp"] * lay["pp"] * lay["dp"] == lay["trainer_gpus"] == 8 * lay["trainer_nodes"]
    mem = out["memory_gb_per_gpu"]
    assert mem["total"] <= mem["usable"]
    assert out["assumptions"]["train_mfu"] == Assumptions().train_mfu
    assert planner.main(["--model", "qwen2.5-32b", "--nodes", "2"]) == 2
    assert "refused" in capsys.readouterr().err
    assert planner.main(["--model", "qwen2.5-32b", "--nodes", "4"]) == 0  # the rich tables
    assert "memory per trainer GPU" in capsys.readouterr().out


def test_launch_section_errors_name_file_line_and_field(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps: 3\nlaunch:\n  model: qwen2.5-7b\n  gpus_per_node: eight\n")
    with pytest.raises(ConfigError) as err:
        load_launch_config(recipe)
    assert str(err.value).startswith(f"{recipe}:4: field 'launch.gpus_per_node': expected an integer")
    recipe.write_text("launch:\n  model: qwen9-1t\n")
    with pytest.raises(ConfigError, match="unknown model preset 'qwen9-1t'"):
        load_launch_config(recipe)
    recipe.write_text("launch:\n  model: qwen2.5-7b\n")
    cfg = load_launch_config(recipe, ["micro_batch=4"])
    assert (cfg.model, cfg.micro_batch, cfg.train_seq_len) == ("qwen2.5-7b", 4, 2048 + 1024)
