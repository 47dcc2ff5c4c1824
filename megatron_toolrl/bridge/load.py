"""HF weights -> the megatron model chunks of this rank (each rank takes its own TP/PP shards)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from megatron_toolrl.bridge.convert import check_hf_state, iter_megatron_shard
from megatron_toolrl.bridge.hf_io import HFCheckpoint, read_hf_state
from megatron_toolrl.bridge.mapping import ShardLayout, model_maps
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.models.arch import ArchSpec
from megatron_toolrl.models.builder import padded_vocab_size
from megatron_toolrl.models.config import ModelConfig


def unwrap_chunks(model_chunks: Sequence[torch.nn.Module]) -> list[torch.nn.Module]:
    """The GPTModels inside megatron's DDP / Float16Module wrappers."""
    from megatron.core.utils import unwrap_model

    return unwrap_model(list(model_chunks))


def model_padded_vocab(arch: ArchSpec, cfg: ModelConfig) -> int:
    return padded_vocab_size(arch.vocab_size, cfg.make_vocab_size_divisible_by, cfg.parallel.tensor_parallel)


@torch.no_grad()
def load_hf_into_megatron(
    model_chunks: Sequence[torch.nn.Module],
    arch: ArchSpec,
    cfg: ModelConfig,
    hf_state: Mapping[str, Tensor] | str | Path,
) -> None:
    """Copy full HF tensors (a state dict, or an HF model directory read lazily) into this rank's
    chunks, each rank slicing out its own TP shard and PP layers.

    Checks first that the HF tensors are exactly those `arch` implies (names and shapes), and
    after loading that every megatron parameter was set. Load before building a megatron
    optimizer: its fp32 main copies are taken from the parameters when it is built.
    """
    state = read_hf_state(hf_state) if isinstance(hf_state, (str, Path)) else hf_state
    maps = model_maps(arch, model_padded_vocab(arch, cfg))
    check_hf_state(maps, state, arch)
    where = state.path if isinstance(state, HFCheckpoint) else None
    for chunk in unwrap_chunks(model_chunks):
        layout = ShardLayout.of_chunk(chunk, cfg.transformer_impl)
        params = dict(chunk.named_parameters())
        loaded: set[str] = set()
        for name, shard in iter_megatron_shard(maps, state, layout):
            if name not in params:
                raise CheckpointError(f"the megatron model has no parameter {name!r} (transformer_impl="
                                      f"{cfg.transformer_impl!r} does not match the built model?)", path=where)
            if tuple(params[name].shape) != tuple(shard.shape):
                raise CheckpointError(
                    f"{name}: the megatron shard has shape {list(params[name].shape)}, the HF weights give "
                    f"{list(shard.shape)} (tensor_parallel={layout.tp_size}, "
                    f"make_vocab_size_divisible_by={cfg.make_vocab_size_divisible_by})", path=where)
            params[name].copy_(shard)
            loaded.add(name)
        not_loaded = sorted(set(params) - loaded)
        if not_loaded:
            raise CheckpointError(f"the {arch.family} mapping sets no value for megatron parameters {not_loaded}",
                                  path=where)
