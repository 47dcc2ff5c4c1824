"""An HF causal-LM config, read into the few numbers a megatron GPT model needs.

One table maps HF `architectures` to a family; a family says which per-architecture features
apply (QKV bias for Qwen2, QK-norm for Qwen3, Llama-3 rope scaling). Everything else is read from
the config and checked, so an unsupported variant fails here with a message, not later with a
shape error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from megatron_toolrl.errors import ModelConfigError

FamilyName = Literal["llama", "qwen2", "qwen3"]

ARCHITECTURES: dict[str, FamilyName] = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
}


@dataclass(frozen=True)
class ArchSpec:
    """The architecture of a dense decoder-only model, independent of HF or megatron naming."""

    family: FamilyName
    hf_architecture: str
    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    norm_eps: float
    rope_theta: float
    tie_word_embeddings: bool
    qkv_bias: bool
    qk_norm: bool
    llama3_rope_factor: float | None = None
    """Llama-3.x rope scaling factor (megatron implements only the llama3 rule with low/high
    frequency factors 1/4 and an original context of 8192; other rope scalings are rejected)."""

    @property
    def kv_group_size(self) -> int:
        return self.num_attention_heads // self.num_kv_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_hf_config(hf_dir_or_config: str | Path | dict[str, Any] | Any) -> dict[str, Any]:
    """A plain dict from an HF model directory, a config.json path, a dict, or a PretrainedConfig."""
    if isinstance(hf_dir_or_config, dict):
        return dict(hf_dir_or_config)
    if isinstance(hf_dir_or_config, (str, Path)):
        path = Path(hf_dir_or_config)
        if path.is_dir():
            path = path / "config.json"
        if not path.is_file():
            raise ModelConfigError(f"{path}: no config.json (is this an HF model directory?)")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ModelConfigError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    if hasattr(hf_dir_or_config, "to_dict"):
        return hf_dir_or_config.to_dict()
    raise ModelConfigError(f"expected an HF model dir, config.json, dict or PretrainedConfig, got {type(hf_dir_or_config).__name__}")


def _rope_theta(cfg: dict[str, Any]) -> float:
    # transformers 5 moved rope_theta into rope_parameters; older configs keep it at the top level.
    params = cfg.get("rope_parameters") or {}
    if "rope_theta" in params:
        return float(params["rope_theta"])
    return float(cfg.get("rope_theta", 10000.0))


def _rope_scaling(cfg: dict[str, Any], arch: str) -> float | None:
    scaling = cfg.get("rope_scaling") or cfg.get("rope_parameters") or None
    if not scaling:
        return None
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind in ("default", None):
        return None
    if kind != "llama3":
        raise ModelConfigError(f"{arch}: rope scaling {kind!r} is not supported (only 'llama3')")
    expected = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    for key, value in expected.items():
        if float(scaling.get(key, value)) != float(value):
            raise ModelConfigError(
                f"{arch}: llama3 rope scaling with {key}={scaling.get(key)} is not supported "
                f"(megatron-core implements {key}={value})"
            )
    return float(scaling["factor"])


def _require(cfg: dict[str, Any], key: str, arch: str) -> Any:
    if key not in cfg:
        raise ModelConfigError(f"{arch} config has no {key!r}")
    return cfg[key]


def arch_from_hf(hf_config: str | Path | dict[str, Any] | Any) -> ArchSpec:
    """Read an HF config (dir, path, dict or PretrainedConfig) into an ArchSpec."""
    cfg = load_hf_config(hf_config)
    archs = cfg.get("architectures") or []
    known = [a for a in archs if a in ARCHITECTURES]
    if not known:
        raise ModelConfigError(
            f"unknown architecture {archs or cfg.get('model_type')!r}: supported are {sorted(ARCHITECTURES)}"
        )
    arch = known[0]
    family = ARCHITECTURES[arch]
    heads = int(_require(cfg, "num_attention_heads", arch))
    hidden = int(_require(cfg, "hidden_size", arch))
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    if heads % kv_heads:
        raise ModelConfigError(f"{arch}: num_attention_heads={heads} is not a multiple of num_key_value_heads={kv_heads}")
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    if cfg.get("hidden_act", "silu") != "silu":
        raise ModelConfigError(f"{arch}: hidden_act {cfg.get('hidden_act')!r} is not supported (only 'silu')")
    if family == "llama" and (cfg.get("attention_bias") or cfg.get("mlp_bias")):
        raise ModelConfigError(f"{arch}: attention_bias/mlp_bias are not supported")
    return ArchSpec(
        family=family,
        hf_architecture=arch,
        num_layers=int(_require(cfg, "num_hidden_layers", arch)),
        hidden_size=hidden,
        ffn_hidden_size=int(_require(cfg, "intermediate_size", arch)),
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=int(_require(cfg, "vocab_size", arch)),
        max_position_embeddings=int(cfg.get("max_position_embeddings", 4096)),
        norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=_rope_theta(cfg),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),  # HF default for all three
        qkv_bias=family == "qwen2",
        qk_norm=family == "qwen3",
        llama3_rope_factor=_rope_scaling(cfg, arch),
    )
