"""A TP/PP-sharded megatron model -> full HF-named tensors, streamed in size-bounded buckets.

Used for the release checkpoint and for the weight sync to rollout engines on every step, so it
never holds more than one bucket of full tensors (plus one tensor's TP shards while gathering).

Where the tensors end up: on EVERY rank. TP shards are all-gathered over the TP group; a tensor
held by one pipeline stage is then broadcast over the PP group. So each rank of a model replica
yields the same buckets in the same order, and any rank (rank 0, or one rank per node) can push
them on. All ranks of the model-parallel group must consume the iterator to the end, because
every tensor is a collective.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from megatron_toolrl.bridge.load import model_padded_vocab, unwrap_chunks
from megatron_toolrl.bridge.mapping import ShardLayout, model_maps
from megatron_toolrl.bridge.tensor_maps import TensorMap, is_tp_sharded
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.models.arch import ArchSpec
from megatron_toolrl.models.config import ModelConfig

DEFAULT_BUCKET_BYTES = 256 * 1024**2
"""256 MiB: large enough that per-bucket overheads (an RPC, a file) are amortised, small next to
the model. The weight sync passes its own."""


def _local_params(chunks: Sequence[torch.nn.Module], maps: Sequence[TensorMap], cfg: ModelConfig) -> dict[str, Tensor]:
    """Global local-spec megatron name -> this rank's parameter (its TP shard)."""
    local: dict[str, Tensor] = {}
    for chunk in chunks:
        layout = ShardLayout.of_chunk(chunk, cfg.transformer_impl)
        params = dict(chunk.named_parameters())
        for m in maps:
            name = layout.local_name(m.megatron)
            if name is None:
                continue
            if name not in params:
                raise CheckpointError(f"the megatron model has no parameter {name!r} "
                                      f"(transformer_impl={cfg.transformer_impl!r} does not match the model?)")
            local[m.megatron] = params[name]
    return local


def _owners(local: dict[str, Tensor], pp_group, pp_size: int) -> dict[str, int]:
    """Name -> the pipeline rank (within the PP group) that holds it."""
    if pp_size == 1:
        return {name: 0 for name in local}
    held: list[list[str] | None] = [None] * pp_size
    dist.all_gather_object(held, sorted(local), group=pp_group)
    owners: dict[str, int] = {}
    for pp_rank, names in enumerate(held):
        for name in names or []:
            owners.setdefault(name, pp_rank)
    return owners


@torch.no_grad()
def export_hf_tensors(
    model_chunks: Sequence[torch.nn.Module],
    arch: ArchSpec,
    cfg: ModelConfig,
    *,
    bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    dtype: torch.dtype | None = None,
) -> Iterator[list[tuple[str, Tensor]]]:
    """Yield buckets of (HF name, full tensor), in HF order, on every rank (see the module doc).

    A bucket holds at most `bucket_bytes` unless a single tensor is larger (it then comes alone).
    Tensors are in the parameters' dtype unless `dtype` is given. They may be views of live
    parameters (TP=PP=1): copy them if they must outlive the next optimizer step.
    """
    from megatron.core import parallel_state

    chunks = unwrap_chunks(model_chunks)
    maps = model_maps(arch, model_padded_vocab(arch, cfg))
    local = _local_params(chunks, maps, cfg)
    tp_group = parallel_state.get_tensor_model_parallel_group()
    tp_size = parallel_state.get_tensor_model_parallel_world_size()
    pp_group = parallel_state.get_pipeline_model_parallel_group()
    pp_size = parallel_state.get_pipeline_model_parallel_world_size()
    pp_rank = parallel_state.get_pipeline_model_parallel_rank()
    owners = _owners(local, pp_group, pp_size)
    first_param = next(p for chunk in chunks for p in chunk.parameters())

    bucket: list[tuple[str, Tensor]] = []
    bucket_size = 0
    for m in maps:
        if m.megatron not in owners:
            raise CheckpointError(f"no pipeline stage holds {m.megatron!r}")
        src = owners[m.megatron]
        if src == pp_rank:
            shard = local[m.megatron].detach()
            shards = [shard]
            if tp_size > 1 and is_tp_sharded(m):
                shards = [torch.empty_like(shard) for _ in range(tp_size)]
                dist.all_gather(shards, shard.contiguous(), group=tp_group)
            full = list(m.from_shards(shards))
        else:
            full = [torch.empty(shape, dtype=first_param.dtype, device=first_param.device) for shape in m.hf_shapes()]
        if pp_size > 1:
            src_global = dist.get_global_rank(pp_group, src)
            for i, tensor in enumerate(full):
                full[i] = tensor.contiguous()
                dist.broadcast(full[i], src=src_global, group=pp_group)
        for name, tensor in zip(m.hf, full):
            if dtype is not None:
                tensor = tensor.to(dtype)
            nbytes = tensor.numel() * tensor.element_size()
            if bucket and bucket_size + nbytes > bucket_bytes:
                yield bucket
                bucket, bucket_size = [], 0
            bucket.append((name, tensor))
            bucket_size += nbytes
    if bucket:
        yield bucket
