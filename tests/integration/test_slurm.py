"""slurm/ scripts and NeMo-Run's SlurmExecutor against a real single-node SLURM cluster.

The cluster is this machine, set up by scripts/slurm_cluster.sh (installed and started here when
it is not running, stopped at the end only if this module started it). The jobs run the launch
smoke workload (a tiny megatron GPT under torchrun, megatron_toolrl.launch.smoke). Every check
reads what the job wrote (metrics, checkpoint, logs), not only exit codes: a SLURM step can fail
while sbatch and sacct report success (notes/probes/REPORT-bfcl-nemo-slurm.md section 5).
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

from tests.helpers import REPO

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

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


def quickstart_env(tmp: Path, **extra: str) -> dict[str, str]:
    return {"TOOLRL_REPO": str(REPO), "PYTHON": sys.executable, "LOG_ROOT": str(tmp / "logs"),
            "CKPT_DIR": str(tmp / "ckpt"), "WORKLOAD": "smoke", **extra}


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


def test_quickstart_cpu_runs_two_steps_and_checkpoints(slurm_cluster, jobs, tmp_path):
    job = jobs.sbatch(QUICKSTART, quickstart_env(tmp_path, STEPS="2", NPROC="2", OVERRIDES="smoke.tensor_parallel=2"),
                      tmp_path)
    assert wait_done(job, 240) == "COMPLETED", (tmp_path / f"quickstart-cpu-{job}.out").read_text()
    log_dir = tmp_path / "logs" / f"quickstart-cpu-{job}"
    metrics = read_jsonl(log_dir / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert all(m["world_size"] == 2 and m["restart"] == 0 for m in metrics)
    assert metrics[1]["loss_sum"] == pytest.approx(metrics[0]["loss"] + metrics[1]["loss"])
    ckpt = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert (ckpt["step"], ckpt["status"], ckpt["tensor_parallel"]) == (2, "done", 2)
    assert ckpt["loss_sum"] == pytest.approx(metrics[-1]["loss_sum"])
    trainer_log = (log_dir / "trainer_r0.log").read_text()
    assert "[smoke] world=2 tp=2 start_step=0" in trainer_log
    assert "trainer exited with code 0" in (log_dir / "events.log").read_text()


def test_preemption_signal_checkpoints_requeues_and_resumes(slurm_cluster, jobs, tmp_path):
    steps = 5
    job = jobs.sbatch(QUICKSTART, quickstart_env(tmp_path, STEPS=str(steps), NPROC="1",
                                                 OVERRIDES="smoke.step_seconds=1.0"), tmp_path)
    log_dir = tmp_path / "logs" / f"quickstart-cpu-{job}"
    metrics_path = log_dir / "metrics.jsonl"
    deadline = time.monotonic() + 180
    while not (metrics_path.exists() and len(read_jsonl(metrics_path)) >= 2):
        assert time.monotonic() < deadline, f"no progress: {job_state(job)}"
        time.sleep(0.5)
    # What `#SBATCH --signal=B:USR1@120` does before the time limit: USR1 to the batch shell only.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True, timeout=30)
    assert wait_done(job, 300) == "COMPLETED", (tmp_path / f"quickstart-cpu-{job}.out").read_text()

    events = (log_dir / "events.log").read_text()
    assert "received SIGUSR1" in events and f"requeueing job {job}" in events
    first = (log_dir / "trainer_r0.log").read_text()
    assert "stop signal" in first
    saved = int(first.split("saved step ")[1].split(",")[0])
    assert 2 <= saved < steps
    second = (log_dir / "trainer_r1.log").read_text()
    assert f"start_step={saved} steps={steps} restart=1" in second

    metrics = read_jsonl(metrics_path)
    assert [m["step"] for m in metrics] == list(range(1, steps + 1)), "a step was skipped or repeated"
    assert [m["restart"] for m in metrics] == [0] * saved + [1] * (steps - saved)
    # The resumed run restored the running sum from the checkpoint: it continues without a jump.
    for prev, cur in zip(metrics, metrics[1:]):
        assert cur["loss_sum"] == pytest.approx(prev["loss_sum"] + cur["loss"], rel=1e-12)
    ckpt = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert (ckpt["step"], ckpt["status"], ckpt["restart"]) == (steps, "done", 1)
    assert ckpt["loss_sum"] == pytest.approx(metrics[-1]["loss_sum"])
    restarts = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts or not restarts  # the record may already have aged out of slurmctld


def test_nemo_run_slurm_executor_submits_and_succeeds(slurm_cluster, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("launch:\n  gpus_per_node: 2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "megatron_toolrl.launch.nemo", str(recipe), "--executor", "slurm", "--workload", "smoke",
         "--nproc-per-node", "2", "--cpus-per-task", "2", "--account", "root", "--time", "00:05:00",
         "--base-dir", str(tmp_path), "--name", "smoke-slurm", "steps=2", "smoke.tensor_parallel=2"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=clean_environ())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "task smoke-slurm: SUCCEEDED" in proc.stderr
    metrics = read_jsonl(tmp_path / "smoke-slurm" / "run" / "metrics.jsonl")
    assert [(m["step"], m["world_size"]) for m in metrics] == [(1, 2), (2, 2)]
    ckpt = json.loads((tmp_path / "smoke-slurm" / "checkpoints" / "checkpoint.json").read_text())
    assert (ckpt["step"], ckpt["status"]) == (2, "done")
    # NeMo-Run's sbatch wrote its own logs under <base>/experiments (LocalTunnel job_dir).
    logs = list((tmp_path / "experiments").rglob("log-*.out"))
    assert logs and any("[smoke] step 2" in p.read_text() for p in logs)
