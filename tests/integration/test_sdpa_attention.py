"""The local spec's SDPA core attention against megatron's own unfused DotProductAttention: same
weights, same logits and same gradients (GQA, Qwen3's head_dim != hidden / heads, fp32 and bf16),
and megatron's forward still serves what SDPA does not cover (attention dropout in training).
The bridge tests compare the default (SDPA) model with HF transformers' logits at TP 1, 2 and PP 2."""

from __future__ import annotations

import pytest
import torch

from megatron_toolrl.bridge import load_hf_into_megatron
from megatron_toolrl.models import ModelConfig, PrecisionConfig, arch_from_hf, build_model_chunks
from megatron_toolrl.models.sdpa_attention import SDPADotProductAttention
from megatron_toolrl.parallel import single_process_parallel
from tests.integration.dist_scripts.bridge_tiny_models import CASES, save_tiny

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def megatron_tp1():
    with single_process_parallel():
        yield


def _model(hf_dir, attention: str, dtype: str = "fp32", dropout: float = 0.0):
    arch = arch_from_hf(hf_dir)
    cfg = ModelConfig(local_attention=attention, precision=PrecisionConfig(params_dtype=dtype), attention_dropout=dropout)
    (model,) = build_model_chunks(arch, cfg)
    load_hf_into_megatron([model], arch, cfg, hf_dir)
    return model


def _logits_and_grads(model, ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    logits = model(ids, positions, None)
    # A loss that weighs every position differently, so every attention row gets a gradient.
    weights = torch.linspace(0.1, 1.0, ids.shape[1]).view(1, -1, 1)
    (logits.float().log_softmax(-1) * weights).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    return logits.detach().float(), grads


@pytest.mark.parametrize(("family", "dtype", "tol"), [("llama", "fp32", 1e-5), ("qwen3", "fp32", 1e-5),
                                                      ("qwen2", "bf16", 0.1)])
def test_sdpa_equals_megatron_unfused_attention(family, dtype, tol, tmp_path, megatron_tp1) -> None:
    case = next(c for c in CASES if c.family == family and not c.tied)
    hf_dir = save_tiny(case, tmp_path / case.name)
    ids = torch.randint(3, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    sdpa, unfused = _model(hf_dir, "sdpa", dtype), _model(hf_dir, "unfused", dtype)
    assert isinstance(sdpa.decoder.layers[0].self_attention.core_attention, SDPADotProductAttention)
    assert not isinstance(unfused.decoder.layers[0].self_attention.core_attention, SDPADotProductAttention)
    got, got_grads = _logits_and_grads(sdpa, ids)
    want, want_grads = _logits_and_grads(unfused, ids)
    assert (got - want).abs().max().item() < tol
    for g, w in zip(got_grads, want_grads):
        scale = max(w.float().abs().max().item(), 1.0)
        assert (g.float() - w.float()).abs().max().item() < tol * scale


def test_attention_dropout_in_training_falls_back_to_megatron(tmp_path, megatron_tp1, monkeypatch) -> None:
    hf_dir = save_tiny(CASES[0], tmp_path / "tiny")
    model = _model(hf_dir, "sdpa", dropout=0.5)
    called = []
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: called.append(1) or pytest.fail("SDPA used with attention dropout"))
    ids = torch.randint(3, 200, (1, 8), generator=torch.Generator().manual_seed(1))
    model.train()
    model(ids, torch.arange(8).unsqueeze(0), None)
    assert called == []
