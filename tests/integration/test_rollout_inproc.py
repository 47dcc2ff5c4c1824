"""The in-process vLLM engine on SmolLM2-135M (fp32): sampling outputs and weight pushes vs HF."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.inproc import InprocEngine
from megatron_toolrl.rollout.types import ProbeBatch, SamplingSettings
from megatron_toolrl.rollout.verify import SyncMismatchError
from tests.integration.dist_scripts.rollout_common import (
    MODEL_DIR,
    QUESTIONS,
    as_buckets,
    chat,
    mean_abs_diff,
    perturbed,
    probe_sequences,
    reference_probe,
    require_model,
)

pytestmark = [pytest.mark.vllm]

SAMPLING = SamplingSettings(n=4, temperature=1.0, max_tokens=24, seed=7)
_THREADS_BEFORE: list[int] = []


@pytest.fixture(scope="module")
def engine():
    require_model()
    _THREADS_BEFORE.append(torch.get_num_threads())
    eng = InprocEngine(RolloutConfig(hf_dir=MODEL_DIR, mode="inproc", dtype="float32", max_model_len=1024, kv_cache_gib=1))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def rollouts(engine, original):
    return engine.generate([chat(q) for q in QUESTIONS[:4]], SAMPLING)


def test_generate_groups_ids_and_logprobs(engine, rollouts):
    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    assert len(rollouts) == 4
    for i, group in enumerate(rollouts):
        assert [c.sample_index for c in group] == [0, 1, 2, 3]
        assert {c.prompt_index for c in group} == {i}
        assert group[0].prompt_token_ids == tok(chat(QUESTIONS[i]), add_special_tokens=True)["input_ids"]
        for c in group:
            assert 1 <= len(c.token_ids) <= SAMPLING.max_tokens
            assert c.finish_reason == ("length" if len(c.token_ids) == SAMPLING.max_tokens else "stop")
            assert len(c.logprobs) == len(c.token_ids) and all(lp <= 0 for lp in c.logprobs)
            assert c.text == tok.decode(c.token_ids, skip_special_tokens=True)

    # The logprob reported for each sampled token is the model's logprob of that token in context.
    flat = [c for group in rollouts for c in group[:2]]
    scored = engine.prompt_logprobs([c.prompt_token_ids + c.token_ids for c in flat])
    for c, row in zip(flat, scored):
        tail = row[len(c.prompt_token_ids) - 1 :]
        assert max(abs(a - b) for a, b in zip(tail, c.logprobs)) < 1e-4

    # A seed fixes the samples: the same call gives the same tokens.
    again = engine.generate([chat(q) for q in QUESTIONS[:2]], SAMPLING)
    assert [[c.token_ids for c in g] for g in again] == [[c.token_ids for c in g] for g in rollouts[:2]]


def test_engine_matches_hf_before_any_push(engine, ref, original, rollouts):
    seqs = probe_sequences(rollouts)
    probe = reference_probe(ref, original, seqs)
    assert mean_abs_diff(engine.prompt_logprobs(seqs), probe.reference_logprobs) < 1e-4


def test_push_perturbed_weights_matches_hf(engine, ref, original, rollouts):
    seqs = probe_sequences(rollouts)
    before = reference_probe(ref, original, seqs)
    new = perturbed(original, seed=1)
    probe = reference_probe(ref, new, seqs)
    # The perturbation must be visible in the logprobs, or agreement would prove nothing.
    assert mean_abs_diff(before.reference_logprobs, probe.reference_logprobs) > 0.05

    stats = engine.update_weights(iter(as_buckets(new)), probe)

    assert stats.num_tensors == len(new)
    assert stats.num_bytes == sum(t.numel() * 4 for t in new.values())
    assert stats.mean_abs_diff < 1e-3 and stats.max_abs_diff < 5e-2
    assert mean_abs_diff(engine.prompt_logprobs(seqs), probe.reference_logprobs) < 1e-3


def test_embedding_only_push_reaches_tied_lm_head(engine, ref, original, rollouts):
    # SmolLM2 ties lm_head to the embedding: a push of the embedding alone must change the logits too.
    seqs = probe_sequences(rollouts)
    base = perturbed(original, seed=2)
    engine.update_weights(iter(as_buckets(base)), reference_probe(ref, base, seqs))
    emb = {"model.embed_tokens.weight": base["model.embed_tokens.weight"] * 0.5}
    probe = reference_probe(ref, {**base, **emb}, seqs)
    stats = engine.update_weights(iter([list(emb.items())]), probe)
    assert stats.num_tensors == 1
    assert stats.mean_abs_diff < 1e-3


def test_probe_against_other_weights_raises(engine, ref, original, rollouts):
    seqs = probe_sequences(rollouts)
    stale = reference_probe(ref, original, seqs)  # logprobs of weights we are not pushing
    with pytest.raises(SyncMismatchError, match="weight sync check failed on inproc"):
        engine.update_weights(iter(as_buckets(perturbed(original, seed=3))), stale)


def test_bad_prompts_are_rejected(engine):
    with pytest.raises(ValueError, match="prompt 1 is a string"):
        engine.generate([[1, 2, 3], "text"], SAMPLING)
    with pytest.raises(ValueError, match="prompt 0 is empty"):
        engine.generate([""], SAMPLING)
    with pytest.raises(ValueError, match="sequence 0"):
        ProbeBatch(token_ids=[[1, 2, 3]], reference_logprobs=[[0.0]])
    assert engine.generate([], SAMPLING) == []


def test_trainer_thread_settings_survive_engine_start(engine):
    # vLLM's CPU worker disables torch.set_num_threads and drops torch to 1 thread; in-process
    # that would be the trainer's setting.
    assert torch.get_num_threads() == _THREADS_BEFORE[0]
    torch.set_num_threads(1)
    try:
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(_THREADS_BEFORE[0])
