"""Vocab-parallel logprobs/entropy against torch.log_softmax on the unpadded vocabulary.

Single process: the TP split is exercised by the torchrun script policy_logprobs.py; here the
shard arithmetic (padding, temperature, gradient, token alignment) is checked at TP=1.
"""

from __future__ import annotations

import pytest
import torch

from megatron_toolrl.policy.logprobs import (
    next_token_entropy,
    next_token_logprobs,
    vocab_parallel_entropy,
    vocab_parallel_logprobs,
)

VOCAB, PADDED = 250, 256


def _padded_logits(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(*shape, PADDED, generator=g, dtype=torch.float64) * 3
    # Padded rows hold garbage that would dominate the softmax if it were not excluded.
    logits[..., VOCAB:] = 50.0
    return logits


@pytest.mark.parametrize("temperature", [1.0, 0.7, 1.3])
def test_logprobs_and_entropy_match_log_softmax(temperature: float) -> None:
    logits = _padded_logits(3, 7)
    targets = torch.randint(0, VOCAB, (3, 7), generator=torch.Generator().manual_seed(1))
    ref_logp = torch.log_softmax(logits[..., :VOCAB] / temperature, dim=-1)
    expected = ref_logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    got = vocab_parallel_logprobs(logits.float(), targets, vocab_size=VOCAB, temperature=temperature)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=0)
    ent = vocab_parallel_entropy(logits.float(), vocab_size=VOCAB, temperature=temperature)
    torch.testing.assert_close(ent.double(), -(ref_logp.exp() * ref_logp).sum(-1), atol=1e-5, rtol=0)


def test_gradient_matches_log_softmax_and_padding_gets_none() -> None:
    base = _padded_logits(2, 5).float()
    targets = torch.randint(0, VOCAB, (2, 5), generator=torch.Generator().manual_seed(2))
    weights = torch.rand(2, 5, generator=torch.Generator().manual_seed(3))

    ours = base.clone().requires_grad_(True)
    (vocab_parallel_logprobs(ours, targets, vocab_size=VOCAB, temperature=0.8) * weights).sum().backward()
    ref = base.clone().requires_grad_(True)
    ref_logp = torch.log_softmax(ref[..., :VOCAB] / 0.8, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    (ref_logp * weights).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, atol=1e-6, rtol=1e-5)
    assert torch.all(ours.grad[..., VOCAB:] == 0)


def test_entropy_gradient_matches_reference() -> None:
    base = _padded_logits(2, 4, seed=5).float()
    ours = base.clone().requires_grad_(True)
    vocab_parallel_entropy(ours, vocab_size=VOCAB).sum().backward()
    ref = base.clone().requires_grad_(True)
    logp = torch.log_softmax(ref[..., :VOCAB], dim=-1)
    (-(logp.exp() * logp).sum(-1)).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, atol=1e-6, rtol=1e-5)


def test_bf16_logits_are_reduced_in_fp32() -> None:
    logits = _padded_logits(2, 3, seed=7)
    targets = torch.randint(0, VOCAB, (2, 3), generator=torch.Generator().manual_seed(8))
    got = vocab_parallel_logprobs(logits.bfloat16(), targets, vocab_size=VOCAB)
    ref = torch.log_softmax(logits.bfloat16().double()[..., :VOCAB], -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, atol=1e-5, rtol=0)


def test_next_token_alignment() -> None:
    logits = _padded_logits(2, 6, seed=9).float()
    ids = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(10))
    lp = next_token_logprobs(logits, ids, vocab_size=VOCAB)
    ent = next_token_entropy(logits, vocab_size=VOCAB)
    assert lp.shape == ent.shape == (2, 6)
    assert torch.all(lp[:, 0] == 0) and torch.all(ent[:, 0] == 0)
    ref = torch.log_softmax(logits[..., :VOCAB].double(), -1)
    for t in range(1, 6):
        # token t is predicted by the logits at position t - 1
        expected = ref[:, t - 1].gather(-1, ids[:, t : t + 1]).squeeze(-1)
        torch.testing.assert_close(lp[:, t].double(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("start", [1, 3, 5])
def test_logits_over_the_last_positions_only(start: int) -> None:
    # A policy that skips the LM head over a prompt prefix hands over logits for positions
    # start..T-1: the logprobs and entropy there are those of the full logits, and 0 before.
    logits = _padded_logits(2, 6, seed=11).float()
    ids = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(12))
    full_lp = next_token_logprobs(logits, ids, vocab_size=VOCAB)
    full_ent = next_token_entropy(logits, vocab_size=VOCAB)
    lp = next_token_logprobs(logits[:, start:], ids, vocab_size=VOCAB)
    ent = next_token_entropy(logits[:, start:], vocab_size=VOCAB, seq_len=6)
    assert lp.shape == ent.shape == (2, 6)
    torch.testing.assert_close(lp[:, start + 1 :], full_lp[:, start + 1 :], atol=0, rtol=0)
    torch.testing.assert_close(ent[:, start + 1 :], full_ent[:, start + 1 :], atol=0, rtol=0)
    assert torch.all(lp[:, : start + 1] == 0) and torch.all(ent[:, : start + 1] == 0)


def test_logits_longer_than_the_sequence_are_rejected() -> None:
    logits = _padded_logits(1, 4).float()
    with pytest.raises(ValueError, match="last positions"):
        next_token_logprobs(logits, torch.zeros(1, 3, dtype=torch.long), vocab_size=VOCAB)
    with pytest.raises(ValueError, match="seq_len"):
        next_token_entropy(logits, vocab_size=VOCAB, seq_len=3)


def test_padded_target_id_is_rejected() -> None:
    logits = _padded_logits(1, 2).float()
    with pytest.raises(ValueError, match=r"\[0, 250\)"):
        vocab_parallel_logprobs(logits, torch.tensor([[3, VOCAB]]), vocab_size=VOCAB)


def test_bad_temperature_and_shape_are_rejected() -> None:
    logits = _padded_logits(1, 2).float()
    with pytest.raises(ValueError, match="temperature"):
        vocab_parallel_logprobs(logits, torch.tensor([[1, 2]]), vocab_size=VOCAB, temperature=0.0)
    with pytest.raises(ValueError, match="shape"):
        vocab_parallel_logprobs(logits, torch.tensor([1, 2]), vocab_size=VOCAB)
