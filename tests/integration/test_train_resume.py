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

from tests.helpers import REPO, SMOLLM2_DIR, TINY_TASK_OVERRIDES, TINY_TRAIN_OVERRIDES, tiny_warm_model

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

# Metrics that measure time, not behaviour, differ between any two runs.
TIMING_PREFIXES = ("time/", "rollout/seconds", "sync/seconds", "sft/seconds")


@pytest.fixture(scope="module")
def warm_model() -> Path:
    if not (SMOLLM2_DIR / "chat_template.jinja").exists():
        pytest.fail("artifacts/smollm2-135m-instruct is missing: run `make model` (make test does)")
    return tiny_warm_model(TINY_TASK_OVERRIDES)


def train_cmd(model: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "megatron_toolrl.cli", "train", str(REPO / "examples" / "quickstart_cpu.yaml"),
        f"hf_dir={model}", f"metrics.dir={run_dir}", f"checkpoint.dir={run_dir / 'ckpt'}",
        "steps=6", "checkpoint.interval=3", *TINY_TRAIN_OVERRIDES, *extra,
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


def test_dynamic_sampling_trains_only_on_groups_with_signal(warm_model, tmp_path):
    """DAPO's dynamic sampling: groups whose rewards all tie are dropped and more prompts sampled.
    Without it this tiny run's second step is all ties (no gradient); with it, every kept group
    has reward variance and the trainer needed extra rounds to fill the batch."""
    run_dir = tmp_path / "dynamic"
    summary = run_to_end(train_cmd(warm_model, run_dir, "steps=3", "checkpoint.interval=0", "grpo.dynamic_sampling=true",
                                   "grpo.dynamic_sampling_max_rounds=4"))
    assert summary["steps"] == 3
    rows = step_metrics(run_dir)
    assert all(r.get("rollout/kept_zero_variance_groups", 0.0) == 0.0 for r in rows.values()), rows
    assert all(r["rollout/groups_kept"] <= 4 for r in rows.values())
    assert any(r["rollout/rounds"] > 1 for r in rows.values())
    assert all(r["optim/grad_norm"] > 0 for r in rows.values() if r["rollout/groups_kept"] > 0)


def test_tool_zero_mode_runs_the_zero_template_and_shifts_the_reward(warm_model, tmp_path):
    """Tool Zero / GG-GRPO end to end: plain-text zero template, no hard-sample pool, and reward
    coefficients that move from the exploratory terms to strict AST over the schedule's window."""
    run_dir = tmp_path / "tool_zero"
    summary = run_to_end(train_cmd(
        warm_model, run_dir, "mode=tool_zero", "steps=3", "checkpoint.interval=0", "prompt.style=zero",
        "hard_sampling.enabled=false", "optimizer.lr_schedule.style=constant",
        "reward.schedule.shape=linear", "reward.schedule.start_step=1", "reward.schedule.end_step=3",
        "reward.format.weight.start=1.0", "reward.format.weight.end=0.0",
        "reward.partial.weight.start=1.0", "reward.partial.weight.end=0.0",
        "reward.ast.weight.start=0.0", "reward.ast.weight.end=2.0"))
    assert summary["mode"] == "tool_zero" and summary["steps"] == 3
    config = json.loads((run_dir / "config.json").read_text())
    assert config["prompt"]["style"] == "zero" and not config["hard_sampling"]["enabled"]
    rows = step_metrics(run_dir)
    ast_weight = [rows[s]["reward/coef/ast.weight"] for s in (1, 2, 3)]
    format_weight = [rows[s]["reward/coef/format.weight"] for s in (1, 2, 3)]
    assert ast_weight == pytest.approx([0.0, 1.0, 2.0]) and format_weight == pytest.approx([1.0, 0.5, 0.0])
    # The pool is off: nothing is marked hard.
    assert all(r.get("pool/total_became_hard", 0.0) == 0.0 for r in rows.values())
