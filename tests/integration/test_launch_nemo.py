"""`megatron-toolrl launch` (megatron_toolrl.launch.nemo) with NeMo-Run's local and SLURM executors.

The local runs start the launch smoke workload (a tiny megatron GPT) under NeMo-Run's torchrun
launcher and check what it wrote. The failing run checks the exit code NeMo-Run itself does not
give (it returns normally when a task failed). The SLURM dry run checks the generated sbatch
script; the real SLURM submission is in test_slurm.py (it needs the cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytest.importorskip("nemo_run", reason="nemo-run is the optional `launch` extra (pip install 'megatron_toolrl[launch]')")


def launch(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("launch:\n  gpus_per_node: 2\n")
    # torch.distributed variables an earlier test may have set in this process must not reach the ranks.
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                                                            "LOCAL_RANK")}
    return subprocess.run([sys.executable, "-m", "megatron_toolrl.launch.nemo", str(recipe), "--base-dir", str(tmp_path),
                           *args], capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env)


@pytest.mark.torchrun
@pytest.mark.slow
def test_local_executor_runs_the_smoke_workload(tmp_path):
    proc = launch(tmp_path, "--executor", "local", "--workload", "smoke", "--name", "smoke-local",
                  "steps=2", "smoke.tensor_parallel=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "task smoke-local: SUCCEEDED" in proc.stderr
    # --nproc-per-node defaults to the recipe's launch.gpus_per_node (2): a TP=2 world.
    metrics = [json.loads(line) for line in (tmp_path / "smoke-local" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["world_size"]) for m in metrics] == [(1, 2), (2, 2)]
    ckpt = json.loads((tmp_path / "smoke-local" / "checkpoints" / "checkpoint.json").read_text())
    assert (ckpt["step"], ckpt["status"], ckpt["tensor_parallel"]) == (2, "done", 2)


@pytest.mark.torchrun
def test_a_failing_task_gives_a_non_zero_exit(tmp_path):
    # steps=0 is refused by the workload's config check: every rank exits 2, the task FAILS.
    proc = launch(tmp_path, "--executor", "local", "--workload", "smoke", "--nproc-per-node", "1", "--name", "bad",
                  "steps=0")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "task bad: FAILED" in proc.stderr and "did not succeed" in proc.stderr
    assert not (tmp_path / "bad" / "checkpoints" / "checkpoint.json").exists()


def test_slurm_dryrun_prints_the_sbatch_script(tmp_path):
    proc = launch(tmp_path, "--executor", "slurm", "--dryrun", "--workload", "smoke", "--nodes", "2",
                  "--nproc-per-node", "4", "--partition", "batch", "--account", "acct9", "--time", "00:30:00",
                  "--name", "dry", "steps=7", timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    script = proc.stdout[proc.stdout.index("#!/bin/bash"):]
    sbatch = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in script.splitlines() if line.startswith("#SBATCH")}
    assert sbatch["#SBATCH --account"] == "acct9"
    assert sbatch["#SBATCH --partition"] == "batch"
    assert sbatch["#SBATCH --nodes"] == "2"
    assert sbatch["#SBATCH --time"] == "00:30:00"
    # NeMo-Run's torchrun launcher: one task per node, the ranks are torchrun's.
    assert sbatch["#SBATCH --ntasks-per-node"] == "1"
    assert sbatch["#SBATCH --output"].startswith(str(tmp_path / "experiments"))
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    assert "torchrun" in srun and "--nnodes 2" in srun and "--nproc-per-node 4" in srun
    assert "-m megatron_toolrl.launch.smoke" in srun
    assert f"checkpoint.dir={tmp_path / 'dry' / 'checkpoints'}" in srun and "checkpoint.resume=true" in srun
    assert srun.rstrip().endswith("steps=7")
    assert f"export PYTHONPATH={REPO}" in script
    assert f"export PATH={Path(sys.executable).parent}:" in script
    assert not (tmp_path / "dry").exists(), "a dry run must not run anything"
    assert not list((tmp_path / "experiments").rglob("*_sbatch.sh")), "the dry run's experiment dir is removed"
