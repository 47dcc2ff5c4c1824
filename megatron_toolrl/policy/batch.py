"""The token batch a policy trains on, its micro-batches, and the global token counts.

Alignment (the same as `logprobs.next_token_logprobs`): every per-token tensor is (B, T) and
aligned with `input_ids`. Position t of `loss_mask`, `old_logprobs`, `advantages` and of the
policy's logprobs refers to token t, i.e. to log p(input_ids[:, t] | input_ids[:, :t]). Position
0 has no prefix, so `loss_mask[:, 0]` must be 0. Sequences are right-padded; padding tokens must
be valid ids (< vocab size) and have mask 0.

There are no per-row position ids: megatron-core's GPTModel derives rotary positions 0..T-1 from
the sequence length and ignores `position_ids` for rope, which is what right padding needs (a
left-padded or packed batch would need packed-sequence params instead).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

_PER_TOKEN_FLOAT_FIELDS = ("loss_mask", "old_logprobs", "ref_logprobs", "advantages")


@dataclass
class TokenBatch:
    """A batch of right-padded sequences with per-token training tensors, all (B, T)."""

    input_ids: torch.Tensor
    """(B, T) long token ids, right-padded."""
    loss_mask: torch.Tensor
    """(B, T) float (bool is converted): 1 where token t's logprob enters the loss (response
    tokens), 0 for prompt, tool-result and padding tokens. Fractional weights are allowed."""
    old_logprobs: torch.Tensor | None = None
    """(B, T) float logprobs of the tokens under the policy that sampled them (GRPO ratio)."""
    ref_logprobs: torch.Tensor | None = None
    """(B, T) float logprobs under a frozen reference policy (KL term), when one is used."""
    advantages: torch.Tensor | None = None
    """(B, T) float per-token advantages (a sequence's advantage broadcast over its tokens)."""

    def __post_init__(self) -> None:
        if self.input_ids.dim() != 2 or self.input_ids.dtype != torch.long:
            raise ValueError(
                f"input_ids must be a (B, T) long tensor, got {tuple(self.input_ids.shape)} {self.input_ids.dtype}"
            )
        if self.input_ids.shape[1] < 2:
            raise ValueError("sequences need at least 2 tokens (one prefix token and one target)")
        if self.loss_mask.dtype == torch.bool:
            self.loss_mask = self.loss_mask.float()
        shape = tuple(self.input_ids.shape)
        for name in _PER_TOKEN_FLOAT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if tuple(value.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(value.shape)}, input_ids has {shape}")
            if not value.is_floating_point():
                raise ValueError(f"{name} must be a float tensor, got {value.dtype}")
        if torch.any(self.loss_mask[:, 0] != 0):
            raise ValueError("loss_mask[:, 0] must be 0: the first token has no prefix to predict it from")

    @property
    def num_sequences(self) -> int:
        return self.input_ids.shape[0]

    @property
    def seq_len(self) -> int:
        return self.input_ids.shape[1]

    def positions(self) -> torch.Tensor:
        """(B, T) positions 0..T-1 (the model's signature wants them; see the module docstring)."""
        return torch.arange(self.seq_len, device=self.input_ids.device).unsqueeze(0).expand(self.num_sequences, -1)

    def select(self, rows: slice) -> "TokenBatch":
        """The sub-batch of rows `rows` (views, no copy)."""
        return replace(self, **{f.name: _rows(getattr(self, f.name), rows) for f in fields(self)})

    def split(self, micro_batch_size: int, allow_uneven: bool = False) -> list["TokenBatch"]:
        """Consecutive micro-batches of `micro_batch_size` sequences. B must be a multiple of it
        (every micro-batch must have the same shape for pipeline-parallel P2P buffers) unless
        `allow_uneven`, which lets the last one be smaller (fine without pipeline parallelism)."""
        if micro_batch_size < 1 or (self.num_sequences % micro_batch_size and not allow_uneven):
            raise ValueError(
                f"batch of {self.num_sequences} sequences does not split into micro-batches of {micro_batch_size}"
            )
        return [self.select(slice(i, i + micro_batch_size)) for i in range(0, self.num_sequences, micro_batch_size)]

    def shard(self, rank: int, world: int) -> "TokenBatch":
        """This data-parallel rank's contiguous 1/world of the rows."""
        if world < 1 or not 0 <= rank < world or self.num_sequences % world:
            raise ValueError(
                f"batch of {self.num_sequences} sequences does not shard into {world} equal parts (rank {rank})"
            )
        per = self.num_sequences // world
        return self.select(slice(rank * per, (rank + 1) * per))

    def to(self, device: torch.device | str) -> "TokenBatch":
        return replace(self, **{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


def _rows(value: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    return None if value is None else value[rows]


def _to(value: torch.Tensor | None, device: torch.device | str) -> torch.Tensor | None:
    return None if value is None else value.to(device)


@dataclass(frozen=True)
class TokenCounts:
    """Normalisers of a loss over the *global* batch (all micro-batches and all DP ranks).

    A loss written as sum(per-token terms) / tokens is then the same number however the batch is
    split into micro-batches and data-parallel shards (NeMo-RL passes the same two counts).
    """

    tokens: float
    """Sum of `loss_mask` over the global batch."""
    sequences: int
    """Number of sequences in the global batch with at least one masked token."""


def local_token_counts(batch: TokenBatch) -> tuple[float, int]:
    """(sum of the mask, sequences with a masked token) of one rank's batch, before the DP sum."""
    mask = batch.loss_mask
    return float(mask.sum()), int((mask.sum(dim=1) > 0).sum())
