"""The whole-model map (one table keyed on the family), megatron naming per layer spec, and
which part of the model a megatron chunk holds (TP rank, PP layers, first/last stage)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal

from megatron_toolrl.bridge import llama, qwen2, qwen3
from megatron_toolrl.bridge.tensor_maps import Replicated, TensorMap, VocabRows
from megatron_toolrl.models.arch import ArchSpec, FamilyName

TransformerImpl = Literal["local", "transformer_engine"]

FAMILY_LAYER_MAPS: dict[FamilyName, Callable[[ArchSpec, int], list[TensorMap]]] = {
    "llama": llama.layer_maps,
    "qwen2": qwen2.layer_maps,
    "qwen3": qwen3.layer_maps,
}

EMBEDDING = "embedding.word_embeddings.weight"
FINAL_NORM = "decoder.final_layernorm.weight"
OUTPUT_LAYER = "output_layer.weight"
HF_EMBEDDING = "model.embed_tokens.weight"
HF_LM_HEAD = "lm_head.weight"

# TransformerEngine fuses each pre-norm into the linear that follows it, so the norm weight is a
# parameter of that linear. Names are otherwise those of the local spec.
_TE_LAYER_RENAMES = {
    "input_layernorm.weight": "self_attention.linear_qkv.layer_norm_weight",
    "pre_mlp_layernorm.weight": "mlp.linear_fc1.layer_norm_weight",
}
_LAYER_NAME = re.compile(r"^decoder\.layers\.(\d+)\.(.+)$")


def model_maps(arch: ArchSpec, padded_vocab_size: int) -> list[TensorMap]:
    """Every tensor of the model in HF order: embedding, layers 0..L-1, final norm, lm_head.

    Names on the megatron side use the local spec and global layer indices. A tied model has no
    lm_head map: HF tied checkpoints have no lm_head.weight, megatron reuses the embedding.
    """
    layer_maps = FAMILY_LAYER_MAPS[arch.family]
    vocab = dict(vocab_size=arch.vocab_size, padded_vocab_size=padded_vocab_size, hidden_size=arch.hidden_size)
    maps: list[TensorMap] = [VocabRows(EMBEDDING, HF_EMBEDDING, **vocab)]
    for layer in range(arch.num_layers):
        maps.extend(layer_maps(arch, layer))
    maps.append(Replicated(FINAL_NORM, "model.norm.weight", (arch.hidden_size,)))
    if not arch.tie_word_embeddings:
        maps.append(VocabRows(OUTPUT_LAYER, HF_LM_HEAD, **vocab))
    return maps


def spec_name(local_spec_name: str, impl: TransformerImpl) -> str:
    """The parameter name under `impl`, given its name under the local spec."""
    if impl == "local":
        return local_spec_name
    match = _LAYER_NAME.match(local_spec_name)
    if match is None or match.group(2) not in _TE_LAYER_RENAMES:
        return local_spec_name
    return f"decoder.layers.{match.group(1)}.{_TE_LAYER_RENAMES[match.group(2)]}"


@dataclass(frozen=True)
class ShardLayout:
    """The part of the model one megatron chunk holds."""

    global_layers: tuple[int, ...]
    """Global index of each local layer (`decoder.layers.i` holds layer global_layers[i])."""
    has_embedding: bool
    """First pipeline stage (megatron's pre_process)."""
    has_output: bool
    """Last pipeline stage (post_process): final norm and output layer."""
    tied_output_copy: bool = False
    """Last stage of a tied model under PP>1: megatron keeps a copy of the embedding there as
    `output_layer.weight` (kept in sync through the embedding group)."""
    tp_rank: int = 0
    tp_size: int = 1
    transformer_impl: TransformerImpl = "local"

    @classmethod
    def whole(cls, arch: ArchSpec, tp_rank: int = 0, tp_size: int = 1,
              transformer_impl: TransformerImpl = "local") -> "ShardLayout":
        """All layers on one stage (PP=1), TP rank `tp_rank` of `tp_size`."""
        return cls(tuple(range(arch.num_layers)), True, True, False, tp_rank, tp_size, transformer_impl)

    @classmethod
    def of_chunk(cls, chunk, transformer_impl: TransformerImpl) -> "ShardLayout":
        """Read from a built GPTModel chunk; layer numbers are megatron's own (1-based, global)."""
        from megatron.core import parallel_state

        return cls(
            global_layers=tuple(layer.layer_number - 1 for layer in chunk.decoder.layers),
            has_embedding=chunk.pre_process,
            has_output=chunk.post_process,
            tied_output_copy=chunk.post_process and not chunk.pre_process and chunk.share_embeddings_and_output_weights,
            tp_rank=parallel_state.get_tensor_model_parallel_rank(),
            tp_size=parallel_state.get_tensor_model_parallel_world_size(),
            transformer_impl=transformer_impl,
        )

    def local_name(self, megatron_name: str) -> str | None:
        """This chunk's parameter name for a global local-spec name; None if the chunk lacks it."""
        match = _LAYER_NAME.match(megatron_name)
        if match is not None:
            layer = int(match.group(1))
            if layer not in self.global_layers:
                return None
            local = f"decoder.layers.{self.global_layers.index(layer)}.{match.group(2)}"
            return spec_name(local, self.transformer_impl)
        if megatron_name == EMBEDDING:
            return megatron_name if self.has_embedding else None
        return megatron_name if self.has_output else None
