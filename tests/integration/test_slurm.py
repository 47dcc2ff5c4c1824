"""slurm/ scripts and NeMo-Run's SlurmExecutor against a real single-node SLURM cluster.

The cluster is this machine, set up by scripts/slurm_cluster.sh (installed and started here when
it is not running, stopped at the end only if this module started it). The jobs run the trainer
(`megatron_toolrl.cli train examples/quickstart_cpu.yaml` under torchrun, in-process vLLM) on the
tiny warm-started policy of the trainer tests, a few seconds per GRPO step. Every check reads what
the job wrote (metrics, checkpoints, logs), not only exit codes: a SLURM step can fail while
sbatch and sacct report success (notes/probes/REPORT-bfcl-nemo-slurm.md section 5).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, SMOLLM2_DIR, TINY_TASK_OVERRIDES, TINY_TRAIN_OVERRIDES, tiny_warm_model

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.vllm]

CLUSTER = REPO / "scripts" / "slurm_cluster.sh"
QUICKSTART = REPO / "slurm" / "quickstart_cpu.sh"


def _cluster(cmd: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLUSTER), cmd], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("the SLURM cluster needs root (scripts/slurm_cluster.sh installs packages and starts daemons)")
    if _cluster("status", 30).returncode == 0:
        yield
        return
    have_binaries = all(shutil.which(b) or Path("/usr/sbin", b).exists() for b in ("sbatch", "slurmctld", "slurmd"))
    if not have_binaries and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and apt-get is unavailable to install it")
    for cmd, timeout in (("install", 600), ("start", 120)):
        proc = _cluster(cmd, timeout)
        assert proc.returncode == 0, f"slurm_cluster.sh {cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    try:
        yield
    finally:
        _cluster("stop", 120)


def clean_environ() -> dict[str, str]:
    """This process's environment without torch.distributed's variables (an earlier test may have
    set them in-process) or the job scripts' parameters: sbatch exports the environment to the job."""
    drop = {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "TP", "PP", "NPROC", "STEPS",
            "OVERRIDES", "WORKLOAD", "RECIPE", "CKPT_DIR", "HF_DIR"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("SLURM_", "LAUNCH_"))}


class Jobs:
    """Job ids submitted by a test, cancelled (by id) if the test leaves them behind."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def sbatch(self, script: Path, env: dict[str, str], cwd: Path, *args: str) -> str:
        proc = subprocess.run(["sbatch", "--parsable", *args, str(script)], capture_output=True, text=True,
                              env={**clean_environ(), **env}, cwd=cwd, timeout=30)
        assert proc.returncode == 0, proc.stderr
        job = proc.stdout.strip().split(";")[0]
        self.ids.append(job)
        return job


@pytest.fixture
def jobs():
    submitted = Jobs()
    yield submitted
    for job in submitted.ids:
        subprocess.run(["scancel", job], capture_output=True, timeout=30)


def job_state(job: str) -> tuple[str, str]:
    """(state, exit code) from sacct (the allocation's own line)."""
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State,ExitCode"], capture_output=True,
                         text=True, timeout=30).stdout.strip().splitlines()
    return tuple(out[0].split("|")) if out else ("", "")  # type: ignore[return-value]


def wait_done(job: str, timeout: float) -> str:
    """Wait until the job has left the queue for good; return its final sacct state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True, timeout=30).stdout.strip()
        state, _ = job_state(job)
        if not queued and state and state not in ("PENDING", "RUNNING", "REQUEUED"):
            return state
        time.sleep(1)
    raise AssertionError(f"job {job} not finished after {timeout:.0f} s (state {job_state(job)})")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def warm_model() -> Path:
    if not (SMOLLM2_DIR / "chat_template.jinja").exists():
        pytest.fail("artifacts/smollm2-135m-instruct is missing: run `make model` (make test does)")
    return tiny_warm_model(TINY_TASK_OVERRIDES)


def trainer_overrides(model: Path, *extra: str) -> list[str]:
    return [f"hf_dir={model}", *TINY_TRAIN_OVERRIDES, *extra]


def quickstart_env(tmp: Path, model: Path, *extra_overrides: str, **extra: str) -> dict[str, str]:
    """slurm/quickstart_cpu.sh's parameters: the trainer on the tiny policy, one rank."""
    return {"TOOLRL_REPO": str(REPO), "PYTHON": sys.executable, "LOG_ROOT": str(tmp / "logs"),
            "CKPT_DIR": str(tmp / "ckpt"), "NPROC": "1", "OVERRIDES": " ".join(trainer_overrides(model, *extra_overrides)),
            **extra}


def grpo_rows(path: Path) -> list[dict]:
    """The trainer's per-step rows of metrics.jsonl (row 0 holds the evaluations before training)."""
    return [row for row in read_jsonl(path) if row["step"] > 0]


def summary_line(log: Path) -> dict:
    """The one JSON line a trainer run ends with."""
    return json.loads([line for line in log.read_text().splitlines() if line.startswith("{")][-1])


def test_cluster_script_is_idempotent_and_configured_for_requeue(slurm_cluster):
    again = _cluster("start", 60)
    assert again.returncode == 0 and "already running" in again.stdout
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    settings = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in config.splitlines()) if v}
    assert settings["JobRequeue"] == "1"
    assert settings["ProctrackType"] == "proctrack/linuxproc"
    assert settings["AccountingStorageType"] == "accounting_storage/slurmdbd"
    sacct = subprocess.run(["sacct", "-n", "-X", "-S", "now-1minutes"], capture_output=True, text=True, timeout=30)
    assert sacct.returncode == 0, sacct.stderr  # accounting answers (NeMo-Run polls sacct)


def test_quickstart_cpu_trains_two_steps_and_checkpoints(slurm_cluster, jobs, warm_model, tmp_path):
    job = jobs.sbatch(QUICKSTART, quickstart_env(tmp_path, warm_model, "checkpoint.interval=1", STEPS="2"), tmp_path)
    assert wait_done(job, 600) == "COMPLETED", (tmp_path / f"quickstart-cpu-{job}.out").read_text()
    log_dir = tmp_path / "logs" / f"quickstart-cpu-{job}"
    rows = grpo_rows(log_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    # A GRPO step happened: rollouts were scored, the policy was updated, the engine re-synced.
    assert all(r["rollout/groups_kept"] == 4 and r["sync/bytes"] > 0 for r in rows)
    assert any(r["optim/grad_norm"] > 0 for r in rows)  # a step whose groups all tie has no gradient
    assert all(r["sync/probe_mean_abs_diff"] < 1e-3 for r in rows)  # fp32 engine == trainer after each push
    ckpt = tmp_path / "ckpt"
    assert (ckpt / "latest").read_text().strip() == "2"
    state = json.loads((ckpt / "step_2" / "policy_state.json").read_text())
    assert state["extra"]["step"] == 2 and state["optimizer_state"]
    assert (ckpt / "step_1" / "policy_state.json").exists()  # checkpoint.interval=1
    summary = summary_line(log_dir / "trainer_r0.log")
    assert (summary["steps"], summary["preempted"]) == (2, False)
    assert summary["checkpoint"] == str(ckpt / "step_2")
    assert "trainer exited with code 0" in (log_dir / "events.log").read_text()


def test_preemption_signal_checkpoints_requeues_and_resumes(slurm_cluster, jobs, warm_model, tmp_path):
    steps = 6
    job = jobs.sbatch(QUICKSTART, quickstart_env(tmp_path, warm_model, "checkpoint.interval=0", STEPS=str(steps)),
                      tmp_path)
    log_dir = tmp_path / "logs" / f"quickstart-cpu-{job}"
    metrics_path = log_dir / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics_path.exists() and len(grpo_rows(metrics_path)) >= 1):
        assert time.monotonic() < deadline, f"no progress: {job_state(job)}"
        time.sleep(0.5)
    # What `#SBATCH --signal=B:USR1@120` does before the time limit: USR1 to the batch shell only.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True, timeout=30)
    assert wait_done(job, 900) == "COMPLETED", (tmp_path / f"quickstart-cpu-{job}.out").read_text()

    events = (log_dir / "events.log").read_text()
    assert "received SIGUSR1" in events and f"requeueing job {job}" in events
    first = summary_line(log_dir / "trainer_r0.log")
    assert first["preempted"] and 1 <= first["steps"] < steps, first
    saved = first["steps"]
    second_log = (log_dir / "trainer_r1.log").read_text()
    assert f"[resume] from step {saved} of {tmp_path / 'ckpt'}" in second_log
    second = summary_line(log_dir / "trainer_r1.log")
    assert (second["steps"], second["preempted"]) == (steps, False)

    # One row per step across both runs: nothing skipped, nothing repeated.
    assert [r["step"] for r in grpo_rows(metrics_path)] == list(range(1, steps + 1))
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == str(steps)
    # The hard-sample pool and the data order came back from the preemption checkpoint.
    state = json.loads((tmp_path / "ckpt" / f"step_{saved}" / "policy_state.json").read_text())
    assert state["extra"]["step"] == saved and "pool" in state["extra"] and "sampler" in state["extra"]
    restarts = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts or not restarts  # the record may already have aged out of slurmctld


def test_nemo_run_slurm_executor_submits_the_trainer_and_succeeds(slurm_cluster, warm_model, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text((REPO / "examples" / "quickstart_cpu.yaml").read_text() + "launch:\n  gpus_per_node: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "megatron_toolrl.launch.nemo", str(recipe), "--executor", "slurm",
         "--nproc-per-node", "1", "--cpus-per-task", "2", "--account", "root", "--time", "00:15:00",
         "--base-dir", str(tmp_path), "--name", "train-slurm", "steps=2", *trainer_overrides(warm_model)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path, env=clean_environ())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "task train-slurm: SUCCEEDED" in proc.stderr
    rows = grpo_rows(tmp_path / "train-slurm" / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and any(r["optim/grad_norm"] > 0 for r in rows)
    ckpt = tmp_path / "train-slurm" / "checkpoints"
    assert (ckpt / "latest").read_text().strip() == "2"
    assert json.loads((ckpt / "step_2" / "policy_state.json").read_text())["extra"]["step"] == 2
    # NeMo-Run's sbatch wrote its own logs under <base>/experiments (LocalTunnel job_dir).
    logs = list((tmp_path / "experiments").rglob("log-*.out"))
    assert logs and any('"steps": 2' in p.read_text() for p in logs)
