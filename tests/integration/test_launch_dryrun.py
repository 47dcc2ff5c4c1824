"""The slurm/ job scripts in DRYRUN=1 mode: the srun commands they would run, for given SLURM_* values.

No scheduler is needed: the scripts print `[dryrun] <name>: srun ...` (shell-quoted) for each step
and `[dryrun]   <node> engine <i>: ...` for each vLLM server a rollout node would start. The
expected layouts come from the planner itself (`launch.planner.plan`), so these tests check that
the scripts carry out the plan (nodes, ranks, TP/PP, ports, GPUs), not a copy of its numbers.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from megatron_toolrl.config import load_config
from megatron_toolrl.launch.config import LaunchConfig
from megatron_toolrl.launch.planner import plan
from megatron_toolrl.rollout.engine_env import WORKER_EXTENSION
from megatron_toolrl.train.config import TrainConfig
from tests.helpers import REPO

SLURM = REPO / "slurm"


# Variables the scripts read as parameters, and torch.distributed's (an earlier test in this process
# may have set MASTER_PORT): none may leak in from the test environment.
SCRIPT_PARAMS = {"MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "TP", "PP", "ROLLOUT_NODES",
                 "VLLM_TP", "MODEL", "GPU", "GPUS_PER_NODE", "WORKLOAD", "STEPS", "NPROC", "OVERRIDES", "CKPT_DIR",
                 "HF_DIR", "RECIPE", "VLLM_PORT", "SYNC_PORT", "TOOLRL_REPO", "TORCHRUN_SIGNAL_ARGS"}


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SCRIPT_PARAMS and not k.startswith(("SLURM_", "LAUNCH_"))}


def dryrun(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {**clean_environ(), "DRYRUN": "1", "PYTHON": sys.executable, "LOG_ROOT": str(tmp_path / "logs"), **env}
    return subprocess.run(["bash", str(SLURM / script)], capture_output=True, text=True, env=full, timeout=180,
                          cwd=tmp_path)


def steps(stdout: str) -> dict[str, list[str]]:
    """{step name: argv} of the `[dryrun] name: cmd` lines."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("[dryrun] ") and ": " in line and not line.startswith("[dryrun]   "):
            name, cmd = line[len("[dryrun] "):].split(": ", 1)
            out[name] = shlex.split(cmd)
    return out


def engines(stdout: str) -> dict[str, list[str]]:
    """{node: [engine command lines]} of the `[dryrun]   node engine i: ...` lines."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("[dryrun]   "):
            node, rest = line[len("[dryrun]   "):].split(" ", 1)
            out.setdefault(node, []).append(rest)
    return out


def flag(argv: list[str], name: str) -> str:
    for i, arg in enumerate(argv):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name:
            return argv[i + 1]
    raise AssertionError(f"{name} not in {argv}")


@pytest.fixture
def recipe_32b(tmp_path: Path) -> Path:
    path = tmp_path / "tool_zero_32b.yaml"
    path.write_text("launch:\n  model: qwen2.5-32b\n  gpu: h100-80gb\n  gpus_per_node: 8\n")
    return path


@pytest.mark.parametrize("nodes", [4, 8])
def test_tool_zero_32b_dryrun_follows_the_plan(nodes, recipe_32b, tmp_path):
    names = [f"gpu{i:03d}" for i in range(1, nodes + 1)]
    proc = dryrun("tool_zero_32b.sh", {"RECIPE": str(recipe_32b), "SLURM_JOB_NODELIST": f"gpu[001-{nodes:03d}]",
                                        "SLURM_NNODES": str(nodes), "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "tz",
                                        "HF_DIR": "/models/qwen2.5-32b"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    p = plan(LaunchConfig(model="qwen2.5-32b", gpu="h100-80gb", gpus_per_node=8), nodes)
    trainers, rollouts = names[: p.split.trainer_nodes], names[p.split.trainer_nodes:]
    assert len(rollouts) == p.split.rollout_nodes >= 1

    cmds = steps(proc.stdout)
    assert set(cmds) == {"trainer", *(f"vllm-{n}" for n in rollouts)}
    trainer = cmds["trainer"]
    assert trainer[0] == "srun"
    assert flag(trainer, "--nodes") == str(len(trainers))
    assert flag(trainer, "--nodelist") == ",".join(trainers)
    assert flag(trainer, "--ntasks-per-node") == "1"
    assert flag(trainer, "--output") == str(tmp_path / "logs" / "tz-4242" / "trainer_%n_r0.log")
    torchrun = trainer[trainer.index("torch.distributed.run") - 2:]
    assert flag(torchrun, "--nnodes") == str(len(trainers))
    assert flag(torchrun, "--nproc-per-node") == "8"
    assert flag(torchrun, "--rdzv-endpoint") == f"{trainers[0]}:29500"
    assert "SIGUSR1" in flag(torchrun, "--signals-to-handle")
    assert torchrun[torchrun.index("-m", 2) + 1:][:3] == ["megatron_toolrl.cli", "train", str(recipe_32b)]
    tp, pp = p.layout.tp, p.layout.pp
    assert f"model.parallel.tensor_parallel={tp}" in torchrun and f"model.parallel.pipeline_parallel={pp}" in torchrun
    assert tp * pp * p.layout.dp == 8 * len(trainers)
    assert "checkpoint.resume=true" in torchrun
    urls = [f"http://{n}:{8000 + e}" for n in rollouts for e in range(8 // p.engines.tensor_parallel)]
    assert f"rollout.server_urls=[{','.join(urls)}]" in torchrun
    assert f"rollout.sync_master_addr={trainers[0]}" in torchrun
    assert f"rollout.tensor_parallel={p.engines.tensor_parallel}" in torchrun
    # The trainer accepts every key the script passes, and reads them as the external servers.
    overrides = torchrun[torchrun.index(str(recipe_32b)) + 1:]
    cfg = load_config(TrainConfig, recipe_32b, overrides)
    assert cfg.rollout.mode == "server" and cfg.rollout.transport == "dist"
    assert cfg.rollout.server_urls == urls and cfg.rollout.tensor_parallel == p.engines.tensor_parallel
    assert cfg.rollout.sync_master_addr == trainers[0] and cfg.rollout.sync_master_port == 29600

    servers = engines(proc.stdout)
    assert sorted(servers) == rollouts
    for node in rollouts:
        node_cmd = cmds[f"vllm-{node}"]
        assert flag(node_cmd, "--nodelist") == node and flag(node_cmd, "--ntasks") == "1"
        assert flag(node_cmd, "--tensor-parallel-size") == str(p.engines.tensor_parallel)
        lines = servers[node]
        assert len(lines) == 8 // p.engines.tensor_parallel
        gpus_seen = []
        for i, line in enumerate(lines):
            argv = shlex.split(line.split(": ", 1)[1])
            env = dict(a.split("=", 1) for a in argv if a.isupper() or a.split("=")[0].isupper())
            gpus_seen += env["CUDA_VISIBLE_DEVICES"].split(",")
            assert env["VLLM_SERVER_DEV_MODE"] == "1"
            server = argv[argv.index("-m") + 1:]
            assert server[0] == "vllm.entrypoints.openai.api_server"
            assert flag(server, "--model") == "/models/qwen2.5-32b"
            assert flag(server, "--port") == str(8000 + i)
            assert flag(server, "--tensor-parallel-size") == str(p.engines.tensor_parallel)
            assert flag(server, "--worker-extension-cls") == WORKER_EXTENSION
        assert sorted(gpus_seen, key=int) == [str(g) for g in range(8)]  # every GPU, once
    for url in urls:
        assert f"[dryrun] wait for {url}/health" in proc.stdout


def test_tool_zero_32b_refuses_a_layout_that_does_not_fit(recipe_32b, tmp_path):
    proc = dryrun("tool_zero_32b.sh", {"RECIPE": str(recipe_32b), "SLURM_JOB_NODELIST": "gpu[001-002]",
                                        "SLURM_NNODES": "2"}, tmp_path)
    assert proc.returncode == 2
    assert "does not fit" in proc.stderr and "GB usable" in proc.stderr
    assert "[dryrun] trainer" not in proc.stdout
    forced = dryrun("tool_zero_32b.sh", {"RECIPE": str(recipe_32b), "SLURM_JOB_NODELIST": "gpu[001-004]",
                                          "SLURM_NNODES": "4", "TP": "1", "PP": "1"}, tmp_path)
    assert forced.returncode == 2 and "forced layout TP=1 PP=1" in forced.stderr


def test_tool_zero_32b_rejects_a_bad_launch_section_with_file_and_line(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("launch:\n  model: qwen2.5-32b\n  gpus_per_nod: 8\n")
    proc = dryrun("tool_zero_32b.sh", {"RECIPE": str(recipe), "SLURM_JOB_NODELIST": "gpu[001-004]",
                                        "SLURM_NNODES": "4"}, tmp_path)
    assert proc.returncode == 2
    assert f"{recipe}:3: field 'launch.gpus_per_nod': unknown key" in proc.stderr


def test_toolexpander_1_5b_splits_one_node_between_trainer_and_engines(tmp_path):
    recipe = tmp_path / "te.yaml"
    recipe.write_text("launch:\n  model: qwen2.5-1.5b\n")
    proc = dryrun("toolexpander_1.5b.sh", {"RECIPE": str(recipe), "SLURM_JOB_NODELIST": "gpu007", "SLURM_NNODES": "1",
                                            "HF_DIR": "/models/q15"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    p = plan(LaunchConfig(model="qwen2.5-1.5b"), 1)
    cmds = steps(proc.stdout)
    trainer, node = cmds["trainer"], cmds["vllm-gpu007"]
    trainer_gpus = flag(trainer, "--export").split("CUDA_VISIBLE_DEVICES=")[1].split(",")
    rollout_gpus = flag(node, "--gpus").split(",")
    assert len(trainer_gpus) == p.split.trainer_gpus and len(rollout_gpus) == p.split.rollout_gpus
    assert sorted(trainer_gpus + rollout_gpus, key=int) == [str(g) for g in range(8)]
    assert "--overlap" in trainer and "--overlap" in node
    assert flag(trainer, "--nproc-per-node") == str(p.split.trainer_gpus)
    assert "rollout.transport=shm" in trainer
    cfg = load_config(TrainConfig, recipe, trainer[trainer.index(str(recipe)) + 1:])
    assert cfg.rollout.server_urls == [f"http://127.0.0.1:{8000 + e}" for e in range(p.engines.engines)]
    assert cfg.rollout.tensor_parallel == p.engines.tensor_parallel and cfg.rollout.transport == "shm"
    assert len(engines(proc.stdout)["gpu007"]) == p.engines.engines


def test_convert_and_quickstart_dryruns(tmp_path):
    conv = dryrun("convert.sh", {"DIRECTION": "hf_to_mcore", "HF_DIR": "/h", "OUT_DIR": "/o", "TP": "2"}, tmp_path)
    assert conv.returncode == 0, conv.stderr
    argv = steps(conv.stdout)["convert"]
    assert argv[argv.index(sys.executable) + 1] == str(REPO / "checkpoints_conv" / "hf_to_mcore.py")
    assert (flag(argv, "--hf-dir"), flag(argv, "--out-dir"), flag(argv, "--tp"), flag(argv, "--pp")) == ("/h", "/o", "2", "1")
    bad = dryrun("convert.sh", {"DIRECTION": "sideways", "OUT_DIR": "/o"}, tmp_path)
    assert bad.returncode == 2 and "DIRECTION must be" in bad.stderr

    quick = dryrun("quickstart_cpu.sh", {"SLURM_CPUS_PER_TASK": "2", "STEPS": "3", "CKPT_DIR": "/c"}, tmp_path)
    assert quick.returncode == 0, quick.stderr
    argv = steps(quick.stdout)["trainer"]
    assert flag(argv, "--nproc-per-node") == "1" and flag(argv, "--cpus-per-task") == "2"
    module = argv[argv.index("-m", argv.index("torch.distributed.run")) + 1:]
    assert module[:3] == ["megatron_toolrl.cli", "train", str(REPO / "examples" / "quickstart_cpu.yaml")]
    assert {"checkpoint.dir=/c", "checkpoint.resume=true", "steps=3"} <= set(module)
    smoke = dryrun("quickstart_cpu.sh", {"WORKLOAD": "smoke", "NPROC": "2", "CKPT_DIR": "/c"}, tmp_path)
    argv = steps(smoke.stdout)["trainer"]
    assert flag(argv, "--nproc-per-node") == "2" and "megatron_toolrl.launch.smoke" in argv and "steps=4" in argv
