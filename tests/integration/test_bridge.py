"""HF <-> megatron bridge on tiny random Llama / Qwen2 / Qwen3 models (tied and untied, GQA,
padded vocabulary): bit-exact round trips and logits equal to HF transformers', at TP=1 in this
process and at TP=2 and PP=2 under torchrun (gloo). The TransformerEngine naming is checked on
plain tensors (TE is not installed here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from megatron_toolrl.bridge import (
    ShardLayout, export_hf_tensors, hf_state_from_megatron, load_hf_into_megatron, megatron_logits,
    megatron_shard_state, read_hf_state,
)
from megatron_toolrl.models import ModelConfig, arch_from_hf, build_model_chunks, padded_vocab_size
from megatron_toolrl.parallel import single_process_parallel
from tests.helpers import REPO, run_torchrun
from tests.integration.dist_scripts.bridge_tiny_models import CASES, fixed_batch, hf_logits, save_tiny, write_cases

DIST_SCRIPT = REPO / "tests" / "integration" / "dist_scripts" / "bridge_roundtrip.py"
LOGITS_TOL = 1e-4


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """Every tiny case saved as an HF directory, with HF's logits on a fixed batch beside it."""
    root = tmp_path_factory.mktemp("tiny_hf")
    input_ids = fixed_batch()
    for hf_dir in write_cases(root).values():
        torch.save({"input_ids": input_ids, "logits": hf_logits(hf_dir, input_ids)}, hf_dir / "hf_logits.pt")
    return root


@pytest.fixture(scope="module")
def megatron_tp1():
    with single_process_parallel():
        yield


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_tp1_round_trip_is_bit_exact_and_logits_match_hf(case, tiny_root, megatron_tp1):
    hf_dir = tiny_root / case.name
    arch, cfg = arch_from_hf(hf_dir), ModelConfig()
    (model,) = build_model_chunks(arch, cfg)
    load_hf_into_megatron([model], arch, cfg, hf_dir)

    original = dict(read_hf_state(hf_dir))
    exported = [(name, t.clone()) for bucket in export_hf_tensors([model], arch, cfg) for name, t in bucket]
    assert [name for name, _ in exported] == list(dict(exported))  # no duplicates
    assert sorted(dict(exported)) == sorted(original)
    assert ("lm_head.weight" in original) == (not case.tied)
    for name, tensor in exported:
        assert torch.equal(tensor, original[name]), name

    # The padding rows megatron adds to the vocabulary are zero.
    emb = model.embedding.word_embeddings.weight
    assert emb.shape[0] == padded_vocab_size(arch.vocab_size, 128, 1) > arch.vocab_size
    assert torch.count_nonzero(emb[arch.vocab_size:]) == 0

    reference = torch.load(hf_dir / "hf_logits.pt")
    logits = megatron_logits([model], reference["input_ids"], arch.vocab_size)
    assert (logits - reference["logits"]).abs().max().item() < LOGITS_TOL


def test_export_streams_bounded_buckets_in_hf_order(tiny_root, megatron_tp1):
    hf_dir = tiny_root / "qwen2-untied"
    arch, cfg = arch_from_hf(hf_dir), ModelConfig()
    (model,) = build_model_chunks(arch, cfg)
    load_hf_into_megatron([model], arch, cfg, read_hf_state(hf_dir))
    limit = 20_000
    buckets = list(export_hf_tensors([model], arch, cfg, bucket_bytes=limit))
    assert len(buckets) > 5
    for bucket in buckets:
        size = sum(t.numel() * t.element_size() for _, t in bucket)
        assert size <= limit or len(bucket) == 1
    names = [name for bucket in buckets for name, _ in bucket]
    assert names[0] == "model.embed_tokens.weight" and names[-1] == "lm_head.weight"
    layer_of = [int(n.split(".")[2]) for n in names if n.startswith("model.layers.")]
    assert layer_of == sorted(layer_of)
    # A bf16 export casts.
    (first,) = next(iter(export_hf_tensors([model], arch, cfg, bucket_bytes=1, dtype=torch.bfloat16)))
    assert first[1].dtype == torch.bfloat16


def test_pure_tensor_shards_equal_the_real_model_state(tiny_root, megatron_tp1):
    """The tensor-level conversion gives exactly the parameters the model-level load puts in GPTModel."""
    hf_dir = tiny_root / "qwen3-untied"
    arch, cfg = arch_from_hf(hf_dir), ModelConfig()
    (model,) = build_model_chunks(arch, cfg)
    load_hf_into_megatron([model], arch, cfg, hf_dir)
    shards = megatron_shard_state(arch, padded_vocab_size(arch.vocab_size, 128, 1), dict(read_hf_state(hf_dir)),
                                  ShardLayout.whole(arch))
    params = dict(model.named_parameters())
    assert sorted(shards) == sorted(params)
    for name, tensor in shards.items():
        assert torch.equal(tensor, params[name]), name


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_transformer_engine_names_round_trip_at_tp2(case, tiny_root):
    hf_state = dict(read_hf_state(tiny_root / case.name))
    arch = arch_from_hf(tiny_root / case.name)
    padded = padded_vocab_size(arch.vocab_size, 128, 2)
    te = [megatron_shard_state(arch, padded, hf_state, ShardLayout.whole(arch, r, 2, "transformer_engine"))
          for r in range(2)]
    local = [megatron_shard_state(arch, padded, hf_state, ShardLayout.whole(arch, r, 2, "local")) for r in range(2)]

    # TE fuses each pre-norm into the following linear; every other name is the local spec's.
    renames = {".input_layernorm.weight": ".self_attention.linear_qkv.layer_norm_weight",
               ".pre_mlp_layernorm.weight": ".mlp.linear_fc1.layer_norm_weight"}
    for te_rank, local_rank in zip(te, local):
        expected = {}
        for name, tensor in local_rank.items():
            for old, new in renames.items():
                if name.endswith(old):
                    name = name[: -len(old)] + new
            expected[name] = tensor
        assert sorted(te_rank) == sorted(expected)
        assert all(torch.equal(te_rank[n], expected[n]) for n in expected)
        assert "decoder.layers.1.mlp.linear_fc1.layer_norm_weight" in te_rank
        if arch.qk_norm:
            assert "decoder.layers.0.self_attention.q_layernorm.weight" in te_rank

    back = hf_state_from_megatron(arch, padded, te, transformer_impl="transformer_engine")
    assert sorted(back) == sorted(hf_state)
    assert all(torch.equal(back[n], hf_state[n]) for n in hf_state)


def test_tp2_shards_split_per_part(tiny_root):
    """Rank r's fc1 is [gate_r; up_r] and its qkv holds whole query groups, not rows of the fused tensor."""
    hf_dir = tiny_root / "qwen2-tied"
    hf_state, arch = dict(read_hf_state(hf_dir)), arch_from_hf(hf_dir)
    shard1 = megatron_shard_state(arch, padded_vocab_size(arch.vocab_size, 128, 2), hf_state,
                                  ShardLayout.whole(arch, 1, 2))
    gate, up = hf_state["model.layers.0.mlp.gate_proj.weight"], hf_state["model.layers.0.mlp.up_proj.weight"]
    half = gate.shape[0] // 2
    assert torch.equal(shard1["decoder.layers.0.mlp.linear_fc1.weight"], torch.cat([gate[half:], up[half:]]))
    # 4 query heads, 2 KV heads, head_dim 16: rank 1 holds group 1 = q heads 2-3, k head 1, v head 1.
    prefix = "model.layers.0.self_attn."
    q, k, v = (hf_state[prefix + f"{p}_proj.bias"] for p in "qkv")
    assert torch.equal(shard1["decoder.layers.0.self_attention.linear_qkv.bias"],
                       torch.cat([q[32:64], k[16:32], v[16:32]]))
    o = hf_state[prefix + "o_proj.weight"]
    assert torch.equal(shard1["decoder.layers.0.self_attention.linear_proj.weight"], o[:, 32:])


def _results(stdout: str) -> list[dict]:
    return [json.loads(line.removeprefix("RESULT ")) for line in stdout.splitlines() if line.startswith("RESULT ")]


@pytest.mark.torchrun
@pytest.mark.parametrize("tp,pp", [(2, 1), (1, 2)], ids=["tp2", "pp2"])
def test_sharded_round_trip_and_logits_under_torchrun(tp, pp, tiny_root):
    extra_args = []
    if pp == 2:  # the PP launch also checks an interleaved (virtual) pipeline on a 4-layer model
        vpp_dir = save_tiny(next(c for c in CASES if c.family == "llama" and not c.tied), tiny_root / "vpp", layers=4)
        extra_args = ["--vpp-dir", str(vpp_dir)]
    stdout = run_torchrun(DIST_SCRIPT, 2, "--root", str(tiny_root), "--tp", str(tp), "--pp", str(pp), *extra_args)
    results = _results(stdout)
    main = [r for r in results if r["case"] != "vpp"]
    assert sorted((r["case"], r["rank"]) for r in main) == sorted((c.name, rank) for c in CASES for rank in (0, 1))
    for r in main:
        assert r["mismatched"] == [] and r["extra"] == [] and r["duplicates"] == 0, r
        assert r["buckets_ok"], r
        assert r["max_abs_diff"] < LOGITS_TOL, r
    if pp == 2:
        vpp = sorted((r for r in results if r["case"] == "vpp"), key=lambda r: r["rank"])
        assert [r["global_layers"] for r in vpp] == [[[0], [2]], [[1], [3]]]
        for r in vpp:
            assert r["mismatched"] == [] and r["extra"] == [], r
