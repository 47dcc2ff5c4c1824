"""HF state dict <-> megatron shard state dicts, as pure tensor functions (no process groups).

The model-level `load_hf_into_megatron` / `export_hf_tensors` are these plus the communication;
tests use these directly for layouts that need no model (TransformerEngine names on a CPU box).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from megatron_toolrl.bridge.hf_io import HFCheckpoint, tensor_shape
from megatron_toolrl.bridge.mapping import (
    EMBEDDING, HF_EMBEDDING, HF_LM_HEAD, OUTPUT_LAYER, ShardLayout, TransformerImpl, model_maps, spec_name,
)
from megatron_toolrl.bridge.tensor_maps import TensorMap
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.models.arch import ArchSpec

_MAX_LISTED = 12


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def _where(state: Mapping[str, Tensor]) -> Path | None:
    return state.path if isinstance(state, HFCheckpoint) else None


def check_hf_state(maps: Sequence[TensorMap], state: Mapping[str, Tensor], arch: ArchSpec) -> None:
    """Raise one CheckpointError listing every missing tensor, unexpected tensor and wrong shape."""
    expected = {name: shape for m in maps for name, shape in zip(m.hf, m.hf_shapes())}
    present = set(state)
    # Derived buffers some older checkpoints carry; recomputed by every implementation.
    ignored = {n for n in present if n.endswith("rotary_emb.inv_freq")}
    problems = []
    if arch.tie_word_embeddings and HF_LM_HEAD in present:
        # Some exporters write the tied head anyway; harmless only when it is the embedding.
        if HF_EMBEDDING in present and torch.equal(state[HF_LM_HEAD], state[HF_EMBEDDING]):
            ignored.add(HF_LM_HEAD)
        else:
            problems.append(f"{HF_LM_HEAD} differs from {HF_EMBEDDING} although the config has tie_word_embeddings=true")
            ignored.add(HF_LM_HEAD)
    missing = sorted(set(expected) - present, key=list(expected).index)
    unexpected = sorted(present - set(expected) - ignored)
    if missing:
        problems.append(f"missing tensors ({len(missing)}): {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors ({len(unexpected)}) for {arch.hf_architecture} "
                        f"with {arch.num_layers} layers: {_listed(unexpected)}")
    for name, shape in expected.items():
        if name in present and tensor_shape(state, name) != shape:
            problems.append(f"{name}: shape {list(tensor_shape(state, name))}, the config implies {list(shape)}")
    if problems:
        raise CheckpointError("HF weights do not match the config: " + "; ".join(problems), path=_where(state))


def iter_megatron_shard(maps: Sequence[TensorMap], state: Mapping[str, Tensor],
                        layout: ShardLayout) -> Iterator[tuple[str, Tensor]]:
    """(chunk parameter name, shard) for every parameter the chunk described by `layout` holds.

    Reads each HF tensor when its map comes up, so at most one map's full tensors are in memory.
    """
    for m in maps:
        name = layout.local_name(m.megatron)
        if name is None and not (layout.tied_output_copy and m.megatron == EMBEDDING):
            continue
        shard = m.to_shard([state[n] for n in m.hf], layout.tp_rank, layout.tp_size)
        if name is not None:
            yield name, shard
        if layout.tied_output_copy and m.megatron == EMBEDDING:
            yield OUTPUT_LAYER, shard


def megatron_shard_state(arch: ArchSpec, padded_vocab_size: int, hf_state: Mapping[str, Tensor],
                         layout: ShardLayout) -> dict[str, Tensor]:
    """The state dict (parameters only) of one megatron chunk, from full HF tensors."""
    maps = model_maps(arch, padded_vocab_size)
    check_hf_state(maps, hf_state, arch)
    return dict(iter_megatron_shard(maps, hf_state, layout))


def hf_state_from_megatron(arch: ArchSpec, padded_vocab_size: int, tp_states: Sequence[Mapping[str, Tensor]],
                           transformer_impl: TransformerImpl = "local") -> dict[str, Tensor]:
    """Full HF tensors from the state dicts of all TP ranks of a whole-model (PP=1) megatron model."""
    out: dict[str, Tensor] = {}
    for m in model_maps(arch, padded_vocab_size):
        name = spec_name(m.megatron, transformer_impl)
        absent = [rank for rank, state in enumerate(tp_states) if name not in state]
        if absent:
            raise CheckpointError(f"megatron state of TP rank(s) {absent} has no {name!r}")
        out.update(zip(m.hf, m.from_shards([state[name] for state in tp_states])))
    return out
