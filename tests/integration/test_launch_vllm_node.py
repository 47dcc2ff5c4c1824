"""megatron_toolrl.launch.vllm_node: the servers of one rollout node, started and stopped for real.

One vLLM CPU server (SmolLM2-135M) is started through the node launcher, answers /health and a
completion, and is gone (port closed, process group empty) after SIGTERM to the launcher, which
then exits 0. A server that cannot start makes the launcher exit non-zero.
"""

from __future__ import annotations

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
from tests.helpers import REPO, SMOLLM2_DIR, free_port

pytestmark = [pytest.mark.vllm, pytest.mark.slow]


def start_node(tmp_path, model: str, port: int) -> subprocess.Popen:
    # torch.distributed variables an earlier test may have set in this process must not reach vLLM.
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE",
                                                            "LOCAL_RANK")}
    env.update(engine_env(RolloutConfig(hf_dir=model)), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "megatron_toolrl.launch.vllm_node", "--model", model, "--gpus", "0",
           "--base-port", str(port), "--host", "127.0.0.1", "--dtype", "float32", "--log-dir", str(tmp_path),
           "--", "--enforce-eager", "--max-model-len", "512"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_node_serves_and_stops_its_servers_on_sigterm(tmp_path):
    if not (SMOLLM2_DIR / "config.json").exists():
        pytest.skip("needs artifacts/smollm2-135m-instruct (make model)")
    port = free_port()
    node = start_node(tmp_path, str(SMOLLM2_DIR), port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert node.poll() is None, f"vllm_node exited early:\n{node.stdout.read()}"
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp_path / "vllm_vm_0.log").read_text()[-3000:]
            time.sleep(1)
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
