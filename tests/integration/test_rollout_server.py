"""Two vLLM servers (fp32 SmolLM2-135M): completions over HTTP, weight pushes through both
transports (gloo group and /dev/shm files) checked against HF, and a server killed mid-batch."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace

import pytest
import requests

from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.server import ServerEngine
from megatron_toolrl.rollout.types import SamplingSettings
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

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SAMPLING = SamplingSettings(n=4, temperature=1.0, max_tokens=16, seed=11)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    require_model()
    cfg = RolloutConfig(
        hf_dir=MODEL_DIR, mode="server", dtype="float32", max_model_len=1024, kv_cache_gib=1,
        num_servers=2, max_concurrency=8, sync_transport="dist", max_restarts=1,
        log_dir=str(tmp_path_factory.mktemp("vllm_logs")),
    )
    eng = ServerEngine(cfg)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def rollouts(engine):
    return engine.generate([chat(q) for q in QUESTIONS[:4]], SAMPLING)


def _running_requests(prometheus_text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in prometheus_text.splitlines()
        if line.startswith("vllm:num_requests_running")
    )


def _engine_logprobs(engine: ServerEngine, seqs):
    return [engine.prompt_logprobs(seqs, server=s.index) for s in engine.servers]


def test_completions_over_http(engine, rollouts):
    assert len(rollouts) == 4
    for i, group in enumerate(rollouts):
        assert [(c.prompt_index, c.sample_index) for c in group] == [(i, k) for k in range(4)]
        for c in group:
            assert len(c.logprobs) == len(c.token_ids) >= 1
    # Sampled-token logprobs equal the prompt logprobs of the same sequence, on either server.
    flat = [g[0] for g in rollouts]
    for per_server in _engine_logprobs(engine, [c.prompt_token_ids + c.token_ids for c in flat]):
        for c, row in zip(flat, per_server):
            assert max(abs(a - b) for a, b in zip(row[len(c.prompt_token_ids) - 1 :], c.logprobs)) < 1e-4
    # Token-id prompts give the same samples as the text they encode (same seed per prompt index).
    by_ids = engine.generate([g[0].prompt_token_ids for g in rollouts[:2]], SAMPLING)
    assert [[c.token_ids for c in g] for g in by_ids] == [[c.token_ids for c in g] for g in rollouts[:2]]


def test_dist_push_matches_hf_on_every_server(engine, ref, original, rollouts):
    seqs = probe_sequences(rollouts, 2)
    new = perturbed(original, seed=21)
    probe = reference_probe(ref, new, seqs)
    assert mean_abs_diff(reference_probe(ref, original, seqs).reference_logprobs, probe.reference_logprobs) > 0.05

    stats = engine.update_weights(iter(as_buckets(new)), probe)

    assert stats.transport == "dist" and stats.num_engines == 2 and stats.num_tensors == len(new)
    assert len(stats.agreements) == 2 and stats.mean_abs_diff < 1e-3
    for per_server in _engine_logprobs(engine, seqs):
        assert mean_abs_diff(per_server, probe.reference_logprobs) < 1e-3


def test_engine_attached_to_running_servers_pushes_through_shm(engine, ref, original, rollouts, tmp_path):
    # A second engine attaches to the running servers by URL (as to servers a SLURM script
    # started) and pushes through /dev/shm files; closing it leaves the servers running.
    seqs = probe_sequences(rollouts, 2)
    new = perturbed(original, seed=22)
    probe = reference_probe(ref, new, seqs)
    cfg = replace(engine.cfg, server_urls=tuple(s.url for s in engine.servers), num_servers=1,
                  sync_transport="shm", sync_snapshot_dir=str(tmp_path / "snap"), log_dir=str(tmp_path))
    attached = ServerEngine(cfg)
    try:
        stats = attached.update_weights(iter(as_buckets(new, per_bucket=40)), probe)
        assert stats.transport == "shm" and stats.num_engines == 2 and stats.num_tensors == len(new)
        assert stats.mean_abs_diff < 1e-3
        # The files of the push are the snapshot a restarted server would be re-synced from.
        files = sorted(str(f) for f in (tmp_path / "snap").iterdir())
        assert files == sorted(s.path for s in attached.snapshot.manifest()) and len(files) == len(as_buckets(new, per_bucket=40))
        (group,) = attached.generate([rollouts[0][0].prompt_token_ids], SamplingSettings(n=2, max_tokens=8, seed=3))
        assert [c.sample_index for c in group] == [0, 1]
    finally:
        attached.close()
    assert not (tmp_path / "snap").exists()
    assert all(s.health() for s in engine.servers)
    for per_server in _engine_logprobs(engine, seqs):
        assert mean_abs_diff(per_server, probe.reference_logprobs) < 1e-3


def test_killed_server_is_restarted_resynced_and_batch_completed(engine, ref, original, rollouts):
    # A push through the engine: the restarted server must come back with these weights (not
    # the model directory's), and the engine checks it against this probe before using it.
    seqs = probe_sequences(rollouts, 2)
    pushed = perturbed(original, seed=23)
    probe = reference_probe(ref, pushed, seqs)
    engine.update_weights(iter(as_buckets(pushed)), probe)
    assert {n for s in engine.snapshot.manifest() for n in s.names} == set(pushed)
    victim = engine.servers[0]
    old_pid = victim.pid

    killed = threading.Event()

    def kill_api_process_mid_batch():
        # Wait until the victim is generating (its own metrics say so), then SIGKILL only the API
        # process: its engine-core and worker children are orphaned, as in a crash.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                metrics = requests.get(victim.url + "/metrics", timeout=5).text
            except requests.RequestException:
                metrics = ""
            if _running_requests(metrics) > 0:
                os.kill(old_pid, signal.SIGKILL)
                killed.set()
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_api_process_mid_batch, daemon=True)
    sampling = SamplingSettings(n=4, temperature=1.0, max_tokens=32, seed=5)
    prompts = [chat(q) for q in QUESTIONS[:6]]
    killer.start()
    out = engine.generate(prompts, sampling)
    killer.join()
    assert killed.is_set(), "the victim never ran a request: the test proved nothing"

    keys = [(c.prompt_index, c.sample_index) for g in out for c in g]
    assert sorted(keys) == [(i, k) for i in range(len(prompts)) for k in range(4)]
    assert len(set(keys)) == len(keys)
    assert [e.server for e in engine.restarts] == [0] and "request failed" in engine.restarts[0].reason
    assert victim.pid != old_pid and victim.health()
    assert mean_abs_diff(engine.prompt_logprobs(seqs, server=0), probe.reference_logprobs) < 1e-3
    # Every completion, from either server, was sampled from the pushed weights.
    flat = [g[0] for g in out]
    hf = ref.prompt_logprobs([c.prompt_token_ids + c.token_ids for c in flat])
    for c, row in zip(flat, hf):
        assert max(abs(a - b) for a, b in zip(row[len(c.prompt_token_ids) - 1 :], c.logprobs)) < 5e-3
