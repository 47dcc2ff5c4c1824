"""How one megatron parameter relates to its HF tensor(s), in both directions, under TP.

Each map owns one megatron parameter (named with the local layer spec and a *global* layer index)
and the HF tensors it is made of. `to_shard` builds tensor-parallel rank r's slice of the megatron
parameter from the full HF tensors; `from_shards` inverts it from the slices of all TP ranks.

Why per-part and not "fuse, then chunk": megatron's fused parameters are laid out per TP shard.
A rank's `linear_fc1` is `[gate_r; up_r]`, not rows r/TP of `[gate; up]`; a rank's `linear_qkv`
holds whole query groups `[q heads of group g; k_g; v_g]` for its own groups. So every HF part is
split across TP first, and the parts of one rank are then fused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor

Shape = tuple[int, ...]


def _chunk(t: Tensor, tp_size: int, tp_rank: int, axis: int) -> Tensor:
    return t.chunk(tp_size, dim=axis)[tp_rank]


@dataclass(frozen=True)
class Replicated:
    """A parameter every TP rank holds whole (norm weights)."""

    megatron: str
    hf_name: str
    shape: Shape

    @property
    def hf(self) -> tuple[str, ...]:
        return (self.hf_name,)

    def hf_shapes(self) -> tuple[Shape, ...]:
        return (self.shape,)

    def to_shard(self, hf: Sequence[Tensor], tp_rank: int, tp_size: int) -> Tensor:
        return hf[0]

    def from_shards(self, shards: Sequence[Tensor]) -> tuple[Tensor, ...]:
        return (shards[0],)


@dataclass(frozen=True)
class Split:
    """A column-parallel (axis 0: output rows) or row-parallel (axis 1: input columns) linear weight."""

    megatron: str
    hf_name: str
    shape: Shape
    axis: Literal[0, 1]

    @property
    def hf(self) -> tuple[str, ...]:
        return (self.hf_name,)

    def hf_shapes(self) -> tuple[Shape, ...]:
        return (self.shape,)

    def to_shard(self, hf: Sequence[Tensor], tp_rank: int, tp_size: int) -> Tensor:
        return _chunk(hf[0], tp_size, tp_rank, self.axis)

    def from_shards(self, shards: Sequence[Tensor]) -> tuple[Tensor, ...]:
        return (torch.cat(list(shards), dim=self.axis),)


@dataclass(frozen=True)
class VocabRows:
    """Embedding or output-layer rows: padded with zero rows to megatron's padded vocabulary,
    then split by rows across TP. Export strips the padding again."""

    megatron: str
    hf_name: str
    vocab_size: int
    padded_vocab_size: int
    hidden_size: int

    @property
    def hf(self) -> tuple[str, ...]:
        return (self.hf_name,)

    def hf_shapes(self) -> tuple[Shape, ...]:
        return ((self.vocab_size, self.hidden_size),)

    def to_shard(self, hf: Sequence[Tensor], tp_rank: int, tp_size: int) -> Tensor:
        rows_per_rank = self.padded_vocab_size // tp_size
        start, stop = tp_rank * rows_per_rank, (tp_rank + 1) * rows_per_rank
        out = hf[0].new_zeros(rows_per_rank, self.hidden_size)
        real = hf[0][start:min(stop, self.vocab_size)]
        out[: real.shape[0]] = real
        return out

    def from_shards(self, shards: Sequence[Tensor]) -> tuple[Tensor, ...]:
        return (torch.cat(list(shards), dim=0)[: self.vocab_size],)


@dataclass(frozen=True)
class QKV:
    """HF q_proj/k_proj/v_proj (weights, or Qwen2's biases) <-> megatron's fused `linear_qkv`.

    megatron orders rows by query group: for each KV head g, the `group_size` query heads that
    attend with it, then k_g, then v_g, each `head_dim` rows. TP rank r holds groups
    [r*G/TP, (r+1)*G/TP), which is exactly that contiguous piece of q, k and v.
    """

    megatron: str
    q: str
    k: str
    v: str
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int | None
    """Input width for weights; None for the bias (a vector)."""

    @property
    def hf(self) -> tuple[str, ...]:
        return (self.q, self.k, self.v)

    def _trailing(self) -> Shape:
        return () if self.hidden_size is None else (self.hidden_size,)

    def hf_shapes(self) -> tuple[Shape, ...]:
        rest = self._trailing()
        return (
            (self.num_heads * self.head_dim, *rest),
            (self.num_kv_heads * self.head_dim, *rest),
            (self.num_kv_heads * self.head_dim, *rest),
        )

    def to_shard(self, hf: Sequence[Tensor], tp_rank: int, tp_size: int) -> Tensor:
        q, k, v = (_chunk(t, tp_size, tp_rank, 0) for t in hf)
        groups = self.num_kv_heads // tp_size
        group_q_rows = (self.num_heads // self.num_kv_heads) * self.head_dim
        rest = self._trailing()
        fused = torch.cat(
            [q.reshape(groups, group_q_rows, *rest), k.reshape(groups, self.head_dim, *rest),
             v.reshape(groups, self.head_dim, *rest)],
            dim=1,
        )  # (groups, group_q_rows + 2*head_dim, *rest)
        return fused.reshape(-1, *rest)

    def from_shards(self, shards: Sequence[Tensor]) -> tuple[Tensor, ...]:
        group_q_rows = (self.num_heads // self.num_kv_heads) * self.head_dim
        rest = self._trailing()
        qs, ks, vs = [], [], []
        for shard in shards:
            per_group = shard.reshape(-1, group_q_rows + 2 * self.head_dim, *rest)
            q, k, v = per_group.split([group_q_rows, self.head_dim, self.head_dim], dim=1)
            qs.append(q.reshape(-1, *rest))
            ks.append(k.reshape(-1, *rest))
            vs.append(v.reshape(-1, *rest))
        return torch.cat(qs), torch.cat(ks), torch.cat(vs)


@dataclass(frozen=True)
class GateUp:
    """HF gate_proj + up_proj <-> megatron's `linear_fc1`, which holds [gate_r; up_r] on TP rank r."""

    megatron: str
    gate: str
    up: str
    ffn_hidden_size: int
    hidden_size: int

    @property
    def hf(self) -> tuple[str, ...]:
        return (self.gate, self.up)

    def hf_shapes(self) -> tuple[Shape, ...]:
        shape = (self.ffn_hidden_size, self.hidden_size)
        return (shape, shape)

    def to_shard(self, hf: Sequence[Tensor], tp_rank: int, tp_size: int) -> Tensor:
        return torch.cat([_chunk(hf[0], tp_size, tp_rank, 0), _chunk(hf[1], tp_size, tp_rank, 0)], dim=0)

    def from_shards(self, shards: Sequence[Tensor]) -> tuple[Tensor, ...]:
        gates, ups = zip(*(shard.chunk(2, dim=0) for shard in shards))
        return torch.cat(gates), torch.cat(ups)


TensorMap = Replicated | Split | VocabRows | QKV | GateUp


def is_tp_sharded(m: TensorMap) -> bool:
    """Whether the megatron parameter differs across TP ranks (and must be gathered on export)."""
    return not isinstance(m, Replicated)
