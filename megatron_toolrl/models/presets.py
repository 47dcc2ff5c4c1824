"""HF configs of the supported model sizes, for planning, recipes and parameter-count checks.

Values are those of the published `config.json` files. `published_params` is the parameter count
the model card states (HF `num_parameters()`, embeddings counted once when tied).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    hf_id: str
    published_params: int
    hf_config: dict[str, Any]


def _llama(hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, theta: float,
           max_pos: int, eps: float = 1e-5, rope_factor: float | None = None, head_dim: int | None = None) -> dict[str, Any]:
    cfg: dict[str, Any] = dict(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_size=hidden, intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
        tie_word_embeddings=tie, rope_theta=theta, max_position_embeddings=max_pos, rms_norm_eps=eps,
        hidden_act="silu", head_dim=head_dim or hidden // heads,
    )
    if rope_factor is not None:
        cfg["rope_scaling"] = dict(rope_type="llama3", factor=rope_factor, low_freq_factor=1.0,
                                   high_freq_factor=4.0, original_max_position_embeddings=8192)
    return cfg


def _qwen2(hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tie: bool, eps: float = 1e-6) -> dict[str, Any]:
    return dict(
        architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=hidden, intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv, vocab_size=vocab,
        tie_word_embeddings=tie, rope_theta=1000000.0, max_position_embeddings=32768, rms_norm_eps=eps,
        hidden_act="silu",
    )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", 134_515_008,
               _llama(576, 1536, 30, 9, 3, 49152, True, 100000.0, 8192)),
        Preset("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B", 494_032_768, _qwen2(896, 4864, 24, 14, 2, 151936, True)),
        Preset("qwen2.5-1.5b", "Qwen/Qwen2.5-1.5B", 1_543_714_304, _qwen2(1536, 8960, 28, 12, 2, 151936, True)),
        Preset("qwen2.5-3b", "Qwen/Qwen2.5-3B", 3_085_938_688, _qwen2(2048, 11008, 36, 16, 2, 151936, True)),
        Preset("qwen2.5-7b", "Qwen/Qwen2.5-7B", 7_615_616_512, _qwen2(3584, 18944, 28, 28, 4, 152064, False)),
        Preset("qwen2.5-14b", "Qwen/Qwen2.5-14B", 14_770_033_664, _qwen2(5120, 13824, 48, 40, 8, 152064, False, 1e-5)),
        Preset("qwen2.5-32b", "Qwen/Qwen2.5-32B", 32_763_876_352, _qwen2(5120, 27648, 64, 40, 8, 152064, False, 1e-5)),
        Preset("llama-3.2-1b", "meta-llama/Llama-3.2-1B", 1_235_814_400,
               _llama(2048, 8192, 16, 32, 8, 128256, True, 500000.0, 131072, rope_factor=32.0, head_dim=64)),
        Preset("llama-3.2-3b", "meta-llama/Llama-3.2-3B", 3_212_749_824,
               _llama(3072, 8192, 28, 24, 8, 128256, True, 500000.0, 131072, rope_factor=32.0, head_dim=128)),
        Preset("llama-3.1-8b", "meta-llama/Llama-3.1-8B", 8_030_261_248,
               _llama(4096, 14336, 32, 32, 8, 128256, False, 500000.0, 131072, rope_factor=8.0)),
    ]
}


def get_preset(name: str) -> Preset:
    key = name.lower()
    if key not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[key]
