"""End-to-end GRPO runs of the trainer on a tiny policy: exact resume after kill -9, preemption,
and the hard-sample pool and checkpoint state surviving the resume.

The policy is a tiny Llama (1k-token BPE vocabulary, SmolLM2's chat template) warm-started so
that rewards vary within groups; everything else is the real stack: megatron-core policy on gloo,
in-process vLLM rollouts, weight pushes through the bridge with the probe check, rewards, pool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SMOLLM2_DIR, tiny_warm_model

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

TASK_OVERRIDES = ["data.max_tools=1", "data.categories=[single]", "data.domains=[weather,finance]", "prompt.format=hermes"]
# Metrics that measure time, not behaviour, differ between any two runs.
TIMING_PREFIXES = ("time/", "rollout/seconds", "sync/seconds", "sft/seconds")


@pytest.fixture(scope="module")
def warm_model() -> Path:
    if not (SMOLLM2_DIR / "chat_template.jinja").exists():
        pytest.fail("artifacts/smollm2-135m-instruct is missing: run `make model` (make test does)")
    return tiny_warm_model(TASK_OVERRIDES)


def train_cmd(model: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "megatron_toolrl.cli", "train", str(REPO / "examples" / "quickstart_cpu.yaml"),
        f"hf_dir={model}", f"metrics.dir={run_dir}", f"checkpoint.dir={run_dir / 'ckpt'}", "metrics.tensorboard=false",
        "steps=6", "checkpoint.interval=3", "grpo.prompts_per_step=4", "grpo.group_size=4", "grpo.micro_batch_size=8",
        "rollout.max_new_tokens=40", "rollout.kv_cache_gib=1", "data.num_train=16", "data.num_eval=4",
        "eval.bfcl_categories=[]", "eval.at_start=false", "eval.at_end=false", "metrics.plot=false",
        "hard_sampling.judge_rollouts=4", "optimizer.lr=1e-3", "data.irrelevance_rate=0.0", "sft.steps=0",
        # fp32 end to end: the resumed run must equal the straight one exactly.
        "model.precision.params_dtype=fp32", "rollout.dtype=float32", *TASK_OVERRIDES, *extra,
    ]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), e.get("PYTHONPATH", "")])
    return e


def run_to_end(cmd: list[str], timeout: float = 900) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env(), cwd=REPO)
    assert proc.returncode == 0, f"train exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_metrics(run_dir: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = {}
    for row in rows:
        if row["step"] > 0:
            steps[row["step"]] = {k: v for k, v in row.items() if not k.startswith(TIMING_PREFIXES)}
    return steps


def test_resume_after_kill_reproduces_the_straight_run(warm_model, tmp_path):
    straight = tmp_path / "straight"
    summary = run_to_end(train_cmd(warm_model, straight))
    assert summary["steps"] == 6 and not summary["preempted"]
    expected = step_metrics(straight)
    assert sorted(expected) == [1, 2, 3, 4, 5, 6]
    # The run must have learned something for the comparison to mean anything: non-zero updates.
    assert any(abs(m["loss/pg_loss"]) > 0 for m in expected.values())
    assert any(m["optim/grad_norm"] > 0 for m in expected.values())

    killed = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(warm_model, killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env(), cwd=REPO, text=True)
    latest = killed / "ckpt" / "latest"
    deadline = time.monotonic() + 900
    while not (latest.exists() and latest.read_text().strip() == "3"):
        assert proc.poll() is None, f"run ended before its step-3 checkpoint: {proc.stderr.read()[-4000:]}"
        assert time.monotonic() < deadline, "no step-3 checkpoint in time"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    resumed = run_to_end(train_cmd(warm_model, killed, "checkpoint.resume=true"))
    assert resumed["steps"] == 6
    got = step_metrics(killed)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    for step in range(1, 7):
        assert got[step] == expected[step], f"step {step} differs after resume"
    # The hard-sample pool's counters went through the checkpoint: they keep growing after step 3.
    assert got[6]["pool/total_became_hard"] >= got[3]["pool/total_became_hard"]


def test_sigusr1_checkpoints_and_exits_with_the_preemption_code(warm_model, tmp_path):
    run_dir = tmp_path / "preempt"
    proc = subprocess.Popen(train_cmd(warm_model, run_dir, "steps=50", "checkpoint.interval=0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), cwd=REPO, text=True)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 900
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert proc.poll() is None, f"run ended early: {proc.stderr.read()[-4000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGUSR1)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 124, err[-4000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["preempted"] and summary["steps"] < 50
    step = int((run_dir / "ckpt" / "latest").read_text())
    assert step == summary["steps"]
    state = json.loads((run_dir / "ckpt" / f"step_{step}" / "policy_state.json").read_text())
    assert state["extra"]["step"] == step and "pool" in state["extra"] and "sampler" in state["extra"]
