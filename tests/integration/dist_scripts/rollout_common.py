"""Shared pieces of the rollout tests: the model, prompts, weight perturbations, probe batches."""

from __future__ import annotations

import pytest
import torch

from megatron_toolrl.rollout.hf_reference import HFReference
from megatron_toolrl.rollout.types import Completion, ProbeBatch
from tests.helpers import SMOLLM2_DIR

MODEL_DIR = str(SMOLLM2_DIR)

QUESTIONS = [
    "What is the capital of Japan?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 17 times 3?",
    "Give me a tip for learning Python.",
    "Why is the sky blue?",
    "Translate 'good morning' into French.",
    "List two uses of a paperclip.",
]


def chat(question: str) -> str:
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def require_model() -> None:
    if not (SMOLLM2_DIR / "model.safetensors").is_file():
        pytest.fail(f"{SMOLLM2_DIR} is missing: build it with `make model` (checkpoints_conv/gguf_to_hf.py)")


def perturbed(weights: dict[str, torch.Tensor], seed: int, scale: float = 0.02) -> dict[str, torch.Tensor]:
    """Every tensor plus Gaussian noise of `scale` times its own std (norm weights included)."""
    g = torch.Generator().manual_seed(seed)
    return {k: v + scale * v.float().std().clamp_min(1e-3) * torch.randn(v.shape, generator=g) for k, v in weights.items()}


def as_buckets(weights: dict[str, torch.Tensor], per_bucket: int = 25) -> list[list[tuple[str, torch.Tensor]]]:
    names = list(weights)
    return [[(n, weights[n]) for n in names[i : i + per_bucket]] for i in range(0, len(names), per_bucket)]


def probe_sequences(completions: list[list[Completion]], count: int = 4) -> list[list[int]]:
    """Prompt + completion token ids of the first sample of the first `count` prompts."""
    return [c[0].prompt_token_ids + c[0].token_ids for c in completions[:count]]


def reference_probe(ref: HFReference, weights: dict[str, torch.Tensor], seqs: list[list[int]]) -> ProbeBatch:
    ref.load(weights.items())
    return ProbeBatch(token_ids=seqs, reference_logprobs=ref.prompt_logprobs(seqs))


def mean_abs_diff(a: list[list[float]], b: list[list[float]]) -> float:
    flat = [abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True)]
    return sum(flat) / len(flat)


def write_tiny_llama(out_dir, seed: int = 0):
    """A small random Llama with SmolLM2's tokenizer and vocabulary, tied embeddings, and 4 query /
    2 KV heads so that megatron TP=2 can split it (SmolLM2's 9/3 heads cannot be split in two).

    Weights are N(0, 0.1) (norms 1 + N(0, 0.2)) rather than HF's N(0, 0.02) init, so the output
    distribution is far from uniform and a weight change moves the logprobs measurably.
    """
    import json
    import shutil
    from pathlib import Path

    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    base = json.loads((SMOLLM2_DIR / "config.json").read_text())
    cfg = LlamaConfig(
        vocab_size=base["vocab_size"], hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=2048,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=base["bos_token_id"],
        eos_token_id=base["eos_token_id"], pad_token_id=base["pad_token_id"], architectures=["LlamaForCausalLM"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1.0 + 0.2 * noise if name.endswith("norm.weight") else 0.1 * noise)
    model.save_pretrained(out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (SMOLLM2_DIR / name).is_file():
            shutil.copy(SMOLLM2_DIR / name, out_dir / name)
    return out_dir
