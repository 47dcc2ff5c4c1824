"""Environment variables every vLLM engine we start needs (CPU settings are ignored on GPU)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from megatron_toolrl.rollout.config import RolloutConfig

WORKER_EXTENSION = "megatron_toolrl.rollout.worker_ext.WeightSyncWorkerExtension"


def engine_env(cfg: RolloutConfig) -> dict[str, str]:
    return {
        "VLLM_CPU_KVCACHE_SPACE": str(cfg.kv_cache_gib),
        "VLLM_CPU_OMP_THREADS_BIND": cfg.cpu_bind(),
        # vLLM reserves one core per worker for its scheduler by default: half of a 2-core machine.
        "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
    }


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore the old values."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
