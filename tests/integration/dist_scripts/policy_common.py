"""Shared set-up of the policy torchrun scripts: a tiny Llama-shaped model and fixed batches."""

from __future__ import annotations

import json
import os
import sys

import torch

from megatron_toolrl.models import ModelConfig, ParallelConfig, PrecisionConfig, arch_from_hf
from megatron_toolrl.policy import LRScheduleConfig, OptimizerSettings, TokenBatch

# vocab 250 pads to 256 (x TP): the padded rows must get no probability mass.
TINY_LLAMA = dict(
    architectures=["LlamaForCausalLM"], hidden_size=64, intermediate_size=128, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, vocab_size=250, max_position_embeddings=64,
    rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False,
)
SEED = 1234


def tiny_arch(tied: bool = False):
    return arch_from_hf({**TINY_LLAMA, "tie_word_embeddings": tied})


def model_config(tp: int = 1, pp: int = 1, vpp: int | None = None, dtype: str = "fp32") -> ModelConfig:
    return ModelConfig(
        parallel=ParallelConfig(tensor_parallel=tp, pipeline_parallel=pp, virtual_pipeline_parallel=vpp),
        precision=PrecisionConfig(params_dtype=dtype),
    )


def optim_settings(**overrides) -> OptimizerSettings:
    # A large LR so that three steps move the loss visibly; warmup + exponential decay so that a
    # resumed run only matches when the scheduler's state was restored too.
    schedule = LRScheduleConfig(style="exponential", warmup_steps=2, gamma=0.8)
    return OptimizerSettings(**{"lr": 1e-2, "weight_decay": 0.01, "lr_schedule": schedule, **overrides})


def make_batch(num_seqs: int = 8, seq_len: int = 16, seed: int = 0) -> TokenBatch:
    """Right-padded sequences with different lengths; the mask covers a 'response' suffix."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 250, (num_seqs, seq_len), generator=g)
    mask = torch.zeros(num_seqs, seq_len)
    for i in range(num_seqs):
        length = seq_len - (i % 4) * 2  # right padding of 0, 2, 4, 6 tokens
        prompt = 3 + i % 3
        mask[i, prompt:length] = 1.0
        ids[i, length:] = 0  # pad id
    return TokenBatch(input_ids=ids, loss_mask=mask)


def emit(tag: str, payload) -> None:
    """One result line for the test to parse: `RESULT <tag> <json>` (rank 0 only)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"RESULT {tag} {json.dumps(payload)}", flush=True)
        sys.stdout.flush()


def parse_results(stdout: str) -> dict:
    out = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            _, tag, payload = line.split(" ", 2)
            out[tag] = json.loads(payload)
    return out
