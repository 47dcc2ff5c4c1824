"""Tiny random HF models (Llama, Qwen2, Qwen3; tied and untied; GQA) for the bridge tests.

Shared by the in-process tests and the torchrun rank scripts. Every parameter, norms and biases
included, is random, so that swapping two tensors of the same shape (say, the two norms of a
layer) changes the logits. vocab_size=300 is not a multiple of 128, so megatron pads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

VOCAB = 300
BATCH_SEED = 7


@dataclass(frozen=True)
class TinyCase:
    family: str
    tied: bool

    @property
    def name(self) -> str:
        return f"{self.family}-{'tied' if self.tied else 'untied'}"


CASES = [TinyCase(family, tied) for family in ("llama", "qwen2", "qwen3") for tied in (True, False)]


def hf_config(case: TinyCase, layers: int = 2):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=layers, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=128, rms_norm_eps=1e-6,
                  tie_word_embeddings=case.tied, bos_token_id=1, eos_token_id=2)
    if case.family == "llama":
        return LlamaConfig(**common, rope_theta=10000.0, architectures=["LlamaForCausalLM"])
    if case.family == "qwen2":
        return Qwen2Config(**common, rope_theta=1000000.0, architectures=["Qwen2ForCausalLM"])
    # head_dim * heads != hidden, as in real Qwen3 models.
    return Qwen3Config(**common, head_dim=32, rope_theta=1000000.0, architectures=["Qwen3ForCausalLM"])


def build_hf_model(case: TinyCase, seed: int = 0, layers: int = 2):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(hf_config(case, layers), dtype=torch.float32, attn_implementation="eager")
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.2 * noise)
            else:
                param.copy_(0.1 * noise)
    return model.eval()


def save_tiny(case: TinyCase, out_dir: Path, seed: int = 0, layers: int = 2) -> Path:
    """An HF model directory (safetensors + config.json) for `case`."""
    model = build_hf_model(case, seed, layers)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    return out_dir


def fixed_batch(batch: int = 2, seq: int = 16) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(BATCH_SEED))


def hf_logits(hf_dir: Path, input_ids: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        return model(input_ids=input_ids).logits.float()


def write_cases(root: Path) -> dict[str, Path]:
    """All cases under `root/<case name>`, plus root/cases.json listing them."""
    dirs = {case.name: save_tiny(case, root / case.name) for case in CASES}
    (root / "cases.json").write_text(json.dumps({name: str(path) for name, path in dirs.items()}))
    return dirs
