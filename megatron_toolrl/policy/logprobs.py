"""Per-token log-probabilities and entropy from vocab-parallel logits.

Under tensor parallelism megatron's output layer leaves each TP rank with a contiguous slice of
the (padded) vocabulary: rank r holds logits for ids [r * V_local, (r + 1) * V_local). Softmax
statistics are therefore reduced over the TP group; nothing of size V is ever gathered.

Notation for one position (all sums over the *true* vocabulary, ids < `vocab_size`):

    z_j     = logits_j / T                       (T = sampling temperature)
    m       = max_j z_j                          (all-reduce MAX; a constant for autograd)
    S       = sum_j exp(z_j - m)                 (all-reduce SUM)
    log p_y = z_y - m - log S                    (z_y comes from the rank that holds id y)
    H       = -sum_j p_j log p_j = log S - sum_j p_j (z_j - m)

megatron pads the vocabulary to a multiple of `make_vocab_size_divisible_by * TP`; the padded
rows are untrained and must get no probability mass, or logprobs would differ from the HF model
(which has no such rows). Masking them to -inf is the same as leaving them out of every sum, and
the padded ids are the tail of the padded vocabulary, so each rank simply drops the tail of its
slice that lies at or past `vocab_size`.

The all-reduces use megatron's `reduce_from_tensor_model_parallel_region` (forward: all-reduce,
backward: identity). Identity is the right backward: every TP rank computes the same loss from
the reduced value, and a rank's local partial sum enters that value once.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed import ProcessGroup


def _tp_rank_and_size(tp_group: ProcessGroup | None) -> tuple[int, int]:
    if tp_group is None:
        return 0, 1
    return dist.get_rank(tp_group), dist.get_world_size(tp_group)


def _sum_over_tp(x: torch.Tensor, tp_group: ProcessGroup | None) -> torch.Tensor:
    if tp_group is None or dist.get_world_size(tp_group) == 1:
        return x
    from megatron.core.tensor_parallel.mappings import reduce_from_tensor_model_parallel_region

    return reduce_from_tensor_model_parallel_region(x, group=tp_group)


def _max_over_tp(x: torch.Tensor, tp_group: ProcessGroup | None) -> torch.Tensor:
    if tp_group is not None and dist.get_world_size(tp_group) > 1:
        dist.all_reduce(x, op=dist.ReduceOp.MAX, group=tp_group)
    return x


def _shifted_true_vocab_logits(
    logits: torch.Tensor, vocab_size: int, tp_group: ProcessGroup | None, temperature: float
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(z - m) over this rank's true-vocabulary columns, m, and this rank's first vocabulary id.

    The result is fp32 whatever the logits' dtype: log-softmax in bf16 loses ~3 digits.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    rank, world = _tp_rank_and_size(tp_group)
    local_size = logits.shape[-1]
    if vocab_size > local_size * world:
        raise ValueError(f"vocab_size {vocab_size} exceeds the padded vocabulary {local_size} x TP {world}")
    start = rank * local_size
    num_valid = min(max(vocab_size - start, 0), local_size)
    z = logits[..., :num_valid].float()
    if temperature != 1.0:
        z = z / temperature
    if num_valid > 0:
        m = z.detach().amax(dim=-1)
    else:  # a rank whose whole slice is padding (tiny vocab, large TP)
        m = torch.full(z.shape[:-1], float("-inf"), dtype=z.dtype, device=z.device)
    m = _max_over_tp(m.contiguous(), tp_group)
    return z - m.unsqueeze(-1), m, start


def vocab_parallel_logprobs(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    vocab_size: int,
    tp_group: ProcessGroup | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """log p(target) at temperature T from (possibly TP-sharded, padded) logits.

    Args:
        logits: (..., V_local) this rank's vocabulary slice; any float dtype.
        targets: (...) long global token ids, all < `vocab_size`.
        vocab_size: the true vocabulary size (HF `vocab_size`); padded ids >= it are excluded.
        tp_group: the tensor-parallel group the vocabulary is split over; None = unsplit.
        temperature: T > 0; the sampler's temperature, so logprobs match the rollouts'.

    Returns: (...) fp32 log p_y = z_y - m - log sum_j exp(z_j - m), with z = logits / T;
    differentiable with respect to `logits` (d log p_y / d logits_j = (1[j=y] - p_j) / T).
    """
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets shape {tuple(targets.shape)} does not match logits {tuple(logits.shape)}")
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= vocab_size):
        # A padded id would silently get log p = -log S (no rank holds its logit).
        raise ValueError(f"target ids must be in [0, {vocab_size}); got [{int(targets.min())}, {int(targets.max())}]")
    shifted, _, start = _shifted_true_vocab_logits(logits, vocab_size, tp_group, temperature)
    num_valid = shifted.shape[-1]
    local = targets - start
    on_this_rank = (local >= 0) & (local < num_valid)
    index = torch.where(on_this_rank, local, torch.zeros_like(local)).unsqueeze(-1)
    if num_valid > 0:
        target_shifted = shifted.gather(-1, index).squeeze(-1) * on_this_rank
    else:
        target_shifted = torch.zeros(targets.shape, dtype=shifted.dtype, device=shifted.device)
    target_shifted = _sum_over_tp(target_shifted, tp_group)
    sum_exp = _sum_over_tp(shifted.exp().sum(dim=-1), tp_group)
    return target_shifted - sum_exp.log()


def vocab_parallel_entropy(
    logits: torch.Tensor,
    *,
    vocab_size: int,
    tp_group: ProcessGroup | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Entropy of softmax(logits / T) over the true vocabulary, per position.

    Returns: (...) fp32 H = log S - sum_j p_j (z_j - m) (module docstring); differentiable.
    """
    shifted, _, _ = _shifted_true_vocab_logits(logits, vocab_size, tp_group, temperature)
    exp = shifted.exp()
    sum_exp = _sum_over_tp(exp.sum(dim=-1), tp_group)
    # exp * shifted: padded columns are not present at all, so no 0 * -inf appears.
    weighted = _sum_over_tp((exp * shifted).sum(dim=-1), tp_group)
    return sum_exp.log() - weighted / sum_exp


def _window(logits: torch.Tensor, input_ids: torch.Tensor) -> int:
    """Sequence position of `logits[:, 0]`: logits may cover only the last L <= T positions."""
    if logits.dim() != 3 or logits.shape[0] != input_ids.shape[0] or not 1 <= logits.shape[1] <= input_ids.shape[1]:
        raise ValueError(f"logits {tuple(logits.shape)} do not cover the last positions of input_ids {tuple(input_ids.shape)}")
    return input_ids.shape[1] - logits.shape[1]


def next_token_logprobs(
    logits: torch.Tensor,
    input_ids: torch.Tensor,
    *,
    vocab_size: int,
    tp_group: ProcessGroup | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Token-aligned log-probabilities of a batch of sequences.

    Args:
        logits: (B, L, V_local) the model's output at the last L <= T positions of each sequence
            (L = T: all of them; a policy skips the LM head over a prefix no loss needs, see
            `MegatronPolicy.response_logits_only`); logits at position t predict token t + 1.
        input_ids: (B, T) the sequences.

    Returns: (B, T) fp32 where out[:, t] = log p(input_ids[:, t] | input_ids[:, :t]) for
    t > T - L, and 0 for t <= T - L (no logits predict those tokens; t = 0 has no prefix at all).
    This is the alignment of `input_ids`, of a loss mask over response tokens, and of the
    per-token logprobs a sampler reports.
    """
    start = _window(logits, input_ids)
    lp = vocab_parallel_logprobs(
        logits[:, :-1], input_ids[:, start + 1 :], vocab_size=vocab_size, tp_group=tp_group, temperature=temperature
    )
    return F.pad(lp, (start + 1, 0))


def next_token_entropy(
    logits: torch.Tensor,
    *,
    vocab_size: int,
    tp_group: ProcessGroup | None = None,
    temperature: float = 1.0,
    seq_len: int | None = None,
) -> torch.Tensor:
    """(B, T) fp32 entropy of the distribution that token t was drawn from (same alignment and
    window as `next_token_logprobs`: out[:, t] comes from logits at position t - 1; `seq_len` is
    T when the logits cover only the last L < T positions; out is 0 where no logits exist)."""
    seq_len = logits.shape[1] if seq_len is None else seq_len
    if not 1 <= logits.shape[1] <= seq_len:
        raise ValueError(f"logits {tuple(logits.shape)} cover more positions than seq_len {seq_len}")
    ent = vocab_parallel_entropy(logits[:, :-1], vocab_size=vocab_size, tp_group=tp_group, temperature=temperature)
    return F.pad(ent, (seq_len - logits.shape[1] + 1, 0))
