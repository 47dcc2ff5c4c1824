"""megatron_toolrl.launch.vllm_node: the servers of one rollout node, started and stopped for real.

One vLLM CPU server (SmolLM2-135M) is started through the node launcher, answers /health and a
completion, and is gone (port closed, process group empty) after SIGTERM to the launcher, which
then exits 0. A server that cannot start makes the launcher exit non-zero. And the disaggregated
layout of slurm/tool_zero_32b.sh on one machine: a node's server started first, then the trainer
attached to it with the script's rollout keys, its weights pushed over the torch.distributed
transport every step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from megatron_toolrl.rollout.completions_api import SERVED_MODEL_NAME
from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.engine_env import engine_env
from tests.helpers import REPO, SMOLLM2_DIR, TINY_TASK_OVERRIDES, TINY_TRAIN_OVERRIDES, free_port, tiny_warm_model

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def start_node(tmp_path, model: str, port: int, max_model_len: int = 512) -> subprocess.Popen:
    # torch.distributed variables an earlier test may have set in this process must not reach vLLM.
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                                                            "LOCAL_RANK")}
    env.update(engine_env(RolloutConfig(hf_dir=model)), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "megatron_toolrl.launch.vllm_node", "--model", model, "--gpus", "0",
           "--base-port", str(port), "--host", "127.0.0.1", "--dtype", "float32", "--log-dir", str(tmp_path),
           "--", "--enforce-eager", "--max-model-len", str(max_model_len)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_healthy(node: subprocess.Popen, url: str, tmp_path) -> None:
    deadline = time.monotonic() + 300
    while True:
        assert node.poll() is None, f"vllm_node exited early:\n{node.stdout.read()}"
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, (tmp_path / "vllm_vm_0.log").read_text()[-3000:]
        time.sleep(1)


def test_node_serves_and_stops_its_servers_on_sigterm(tmp_path):
    if not (SMOLLM2_DIR / "config.json").exists():
        pytest.skip("needs artifacts/smollm2-135m-instruct (make model)")
    port = free_port()
    node = start_node(tmp_path, str(SMOLLM2_DIR), port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(node, url, tmp_path)
        reply = requests.post(url + "/v1/completions", json={"model": SERVED_MODEL_NAME, "prompt": "Hello",
                                                             "max_tokens": 4, "temperature": 0}, timeout=120)
        assert reply.status_code == 200 and reply.json()["choices"][0]["text"]
        node.send_signal(signal.SIGTERM)
        assert node.wait(timeout=60) == 0
    finally:
        if node.poll() is None:
            node.kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/health", timeout=2)
    logs = list(tmp_path.glob("vllm_*_0.log"))
    assert logs and "--worker-extension-cls" not in node.stdout.read()  # server output went to its log file


def test_node_exits_non_zero_when_a_server_cannot_start(tmp_path):
    node = start_node(tmp_path, str(tmp_path / "no-such-model"), free_port())
    code = node.wait(timeout=300)
    out = node.stdout.read()
    assert code != 0 and "engine 0 exited with code" in out


def test_trainer_attaches_to_a_node_and_pushes_weights_over_dist(tmp_path):
    """What slurm/tool_zero_32b.sh does across nodes, here on one: servers first, then the trainer
    with `rollout.server_urls` and the "dist" transport on a fixed port (rollout.sync_master_port)."""
    if not (SMOLLM2_DIR / "chat_template.jinja").exists():
        pytest.fail("artifacts/smollm2-135m-instruct is missing: run `make model` (make test does)")
    model = tiny_warm_model(TINY_TASK_OVERRIDES)
    port, sync_port = free_port(), free_port()
    node = start_node(tmp_path / "node", str(model), port, max_model_len=2048)
    url = f"http://127.0.0.1:{port}"
    run_dir = tmp_path / "run"
    try:
        wait_healthy(node, url, tmp_path / "node")
        env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")}
        env["PYTHONPATH"] = str(REPO)
        proc = subprocess.run(
            [sys.executable, "-m", "megatron_toolrl.cli", "train", str(REPO / "examples" / "quickstart_cpu.yaml"),
             f"hf_dir={model}", f"metrics.dir={run_dir}", f"checkpoint.dir={run_dir / 'ckpt'}", "steps=2",
             *TINY_TRAIN_OVERRIDES, "rollout.mode=server", f"rollout.server_urls=[{url}]", "rollout.tensor_parallel=1",
             "rollout.transport=dist", "rollout.sync_master_addr=127.0.0.1", f"rollout.sync_master_port={sync_port}"],
            capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-5000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["steps"] == 2
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if r["step"] > 0]
        assert [r["step"] for r in rows] == [1, 2]
        # Every push reached the external server: its logprobs of the probe batch equal the trainer's.
        assert all(r["sync/bytes"] > 0 and r["sync/probe_mean_abs_diff"] < 1e-3 for r in rows)
        # The trainer started no server of its own, and left the node's running when it ended.
        assert requests.get(url + "/health", timeout=5).status_code == 200
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=60)
        except subprocess.TimeoutExpired:
            node.kill()
