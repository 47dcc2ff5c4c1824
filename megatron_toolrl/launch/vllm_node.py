"""The vLLM servers of one rollout node: one OpenAI-compatible server per group of GPUs.

    python -m megatron_toolrl.launch.vllm_node --model HF_DIR --gpus 0,1,2,3 --tensor-parallel-size 2 \\
        --base-port 8000 --log-dir DIR [--dry-run] [-- more vLLM flags]

The SLURM scripts run this once per rollout node (one srun task), because several srun steps
on one node would have to share or split its GPUs through GRES settings that differ between
clusters. Server i gets GPUs [i*TP, (i+1)*TP) of `--gpus` (CUDA_VISIBLE_DEVICES) and port
base_port + i. Every server loads our weight-sync worker extension and runs with
VLLM_SERVER_DEV_MODE=1 (the /collective_rpc route weight sync uses): bind it to the cluster's
private network only. The trainer reaches the servers at http://<node>:<port>.

The process stays in the foreground while its servers run. If one server exits, the others are
stopped and this exits with that server's code. SIGTERM, SIGINT or SIGUSR1 stops all of them
(each in its own session, so its engine-core children go too) and exits 0.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from megatron_toolrl.rollout.completions_api import SERVED_MODEL_NAME
from megatron_toolrl.rollout.engine_env import WORKER_EXTENSION

STOP_GRACE_S = 30.0


def server_command(python: str, model: str, host: str, port: int, tp: int, dtype: str, seed: int,
                   gpu_memory_utilization: float, extra: list[str]) -> list[str]:
    return [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model,
        "--served-model-name", SERVED_MODEL_NAME,
        "--host", host,
        "--port", str(port),
        "--tensor-parallel-size", str(tp),
        "--dtype", dtype,
        "--seed", str(seed),
        "--gpu-memory-utilization", str(gpu_memory_utilization),
        "--worker-extension-cls", WORKER_EXTENSION,
        "--generation-config", "vllm",  # the model's generation_config.json would set every request's sampling
        "--enable-prefix-caching",
        "--disable-uvicorn-access-log",
        *extra,
    ]


def gpu_groups(gpus: list[str], tp: int) -> list[list[str]]:
    if not gpus:
        raise ValueError("--gpus is empty")
    if len(gpus) % tp:
        raise ValueError(f"{len(gpus)} GPUs ({','.join(gpus)}) do not split into engines of TP={tp}")
    return [gpus[i:i + tp] for i in range(0, len(gpus), tp)]


def parse_args(argv: list[str]) -> argparse.Namespace:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    ap = argparse.ArgumentParser(prog="python -m megatron_toolrl.launch.vllm_node",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="HF model directory every server loads")
    ap.add_argument("--gpus", required=True, help="comma-separated GPU ids of this node for the servers, e.g. 0,1,2,3")
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--base-port", type=int, default=8000)
    ap.add_argument("--host", default="0.0.0.0", help="address the servers bind to")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    ap.add_argument("--log-dir", type=Path, default=None, help="server logs (default: stdout)")
    ap.add_argument("--dry-run", action="store_true", help="print each server's environment and command, start nothing")
    args = ap.parse_args(argv)
    args.extra = extra
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        groups = gpu_groups([g for g in args.gpus.split(",") if g], args.tensor_parallel_size)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    node = os.uname().nodename.split(".")[0]
    plans = []
    for i, group in enumerate(groups):
        cmd = server_command(sys.executable, args.model, args.host, args.base_port + i, args.tensor_parallel_size,
                             args.dtype, args.seed, args.gpu_memory_utilization, args.extra)
        env = {"CUDA_VISIBLE_DEVICES": ",".join(group), "VLLM_SERVER_DEV_MODE": "1"}
        plans.append((i, cmd, env))
    if args.dry_run:
        for i, cmd, env in plans:
            print(f"engine {i}: " + " ".join(f"{k}={v}" for k, v in env.items()) + " " + shlex.join(cmd))
        return 0

    stop: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(sig, lambda s, f: stop.append(s))
    procs: list[subprocess.Popen] = []
    logs = []
    for i, cmd, env in plans:
        out = None
        if args.log_dir is not None:
            args.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(args.log_dir / f"vllm_{node}_{i}.log", "ab")
            logs.append(out)
        full_env = dict(os.environ, **env)
        print(f"[vllm_node] {node} engine {i} on GPUs {env['CUDA_VISIBLE_DEVICES']} port {args.base_port + i}",
              flush=True)
        procs.append(subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                      stdin=subprocess.DEVNULL, start_new_session=True))
    code = 0
    try:
        while not stop:
            dead = [(i, p.returncode) for i, p in enumerate(procs) if p.poll() is not None]
            if dead:
                i, code = dead[0]
                print(f"[vllm_node] engine {i} exited with code {code}: stopping the others", flush=True)
                code = code or 1
                break
            time.sleep(1.0)
    finally:
        _stop_all(procs)
        for f in logs:
            f.close()
    return 0 if stop else code


def _stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each server's session (the API process and its engine core), SIGKILL after a grace period."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the session may outlive its leader (engine core children)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    sys.exit(main())
