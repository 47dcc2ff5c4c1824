"""Device detection, and the shims megatron-core needs when torch has no CUDA.

megatron-core assumes CUDA in a handful of places even with the local (non-TransformerEngine)
layer spec. On a CPU-only torch each of those calls raises "Torch not compiled with CUDA
enabled". `install_cpu_shims()` replaces exactly those calls, once, and only when CUDA is absent;
on a GPU machine it does nothing, so the same training code runs on both.

The shims (each names the CUDA call it stands in for):

1. RNG: `torch.cuda.{get,set}_rng_state`, `torch.cuda.manual_seed` and megatron's
   `tensor_parallel.random._{get,set}_cuda_rng_state` -> the CPU generator. Megatron's
   `CudaRNGStatesTracker` forks per-TP-rank RNG streams for dropout/init; on CPU the CPU
   generator is the one those ops draw from.
2. `torch.cuda.current_device()` -> "cpu": used as a `device=` argument in ~175 places
   (rotary embeddings, TP gather buffers, attention buffers).
3. `transformer.utils.get_default_causal_mask` -> a CPU mask: used by the local softmax when no
   attention mask is given; upstream builds it with `device="cuda"`.
4. `torch.cuda.synchronize()` -> no-op: called after pipeline P2P `batch_isend_irecv` and in DDP.
5. `torch.cuda.current_stream()/default_stream()` -> a stream whose waits are no-ops: DDP's grad
   sync waits on streams (megatron-core >= 0.17).
6. `torch.cuda.Event` -> a wall-clock event: inference timing and some schedules.
7. `torch.cuda.nvtx.range_push/range_pop` -> no-ops.

Plus `cuda_to_cpu()`, a TorchFunctionMode used around megatron's schedules and optimizer only
(it costs Python overhead per torch call): it rewrites `device="cuda"` to CPU, makes
`Tensor.cuda()`/`pin_memory()` no-ops, and makes `Tensor.type()` report `torch.cuda.*Tensor`,
which megatron's optimizers compare against (`clip_grads`, `Float16OptimizerWithFloat16Params`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from typing import Iterator

import torch
from torch.overrides import TorchFunctionMode

_SHIMS_APPLIED: list[str] = []


def has_cuda() -> bool:
    """True when torch was built with CUDA and sees at least one device."""
    return torch.cuda.is_available()


def device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if has_cuda() else torch.device("cpu")


def default_backend() -> str:
    """torch.distributed backend for this machine: NCCL with GPUs, gloo otherwise."""
    return "nccl" if has_cuda() else "gloo"


def applied_shims() -> tuple[str, ...]:
    return tuple(_SHIMS_APPLIED)


def install_cpu_shims() -> tuple[str, ...]:
    """Apply the CPU shims once. A no-op when CUDA is present. Returns the names applied."""
    if has_cuda() or _SHIMS_APPLIED:
        return applied_shims()
    _shim_rng()
    _shim_current_device()
    _shim_causal_mask()
    _shim_synchronize()
    _shim_streams()
    _shim_events()
    _shim_nvtx()
    return applied_shims()


def _shim_rng() -> None:
    import megatron.core.tensor_parallel.random as mcore_random

    torch.cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()
    torch.cuda.set_rng_state = lambda new_state, device="cuda": torch.set_rng_state(new_state)
    torch.cuda.manual_seed = torch.manual_seed
    mcore_random._get_cuda_rng_state = lambda device="cuda", clone=False, graph_safe=False: torch.get_rng_state()
    mcore_random._set_cuda_rng_state = lambda new_state, device=-1, graph_safe=False: torch.set_rng_state(new_state)
    _SHIMS_APPLIED.append("rng")


def _shim_current_device() -> None:
    torch.cuda.current_device = lambda: "cpu"
    _SHIMS_APPLIED.append("current_device")


@functools.lru_cache(maxsize=64)
def _cpu_causal_mask(seq_len: int) -> torch.Tensor:
    # True marks a masked (future) position, as megatron's mask convention.
    return torch.triu(torch.ones(seq_len, seq_len, dtype=torch.bool), diagonal=1)


def _shim_causal_mask() -> None:
    import megatron.core.fusions.fused_softmax as fused_softmax
    import megatron.core.transformer.utils as transformer_utils

    transformer_utils.get_default_causal_mask = _cpu_causal_mask
    if "get_default_causal_mask" in vars(fused_softmax):
        fused_softmax.get_default_causal_mask = _cpu_causal_mask
    _SHIMS_APPLIED.append("causal_mask")


def _shim_synchronize() -> None:
    torch.cuda.synchronize = lambda device=None: None
    _SHIMS_APPLIED.append("synchronize")


class _CpuStream:
    """Stands in for torch.cuda.Stream: CPU ops are synchronous, so every wait is already done."""

    def wait_event(self, event: object) -> None:
        pass

    def wait_stream(self, stream: object) -> None:
        pass

    def synchronize(self) -> None:
        pass


def _shim_streams() -> None:
    torch.cuda.current_stream = lambda device=None: _CpuStream()
    torch.cuda.default_stream = lambda device=None: _CpuStream()
    _SHIMS_APPLIED.append("streams")


class _WallClockEvent:
    """Stands in for torch.cuda.Event(enable_timing=True) with perf_counter timestamps."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False) -> None:
        self._t: float | None = None

    def record(self, stream: object = None) -> None:
        self._t = time.perf_counter()

    def synchronize(self) -> None:
        pass

    def wait(self, stream: object = None) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, end: "_WallClockEvent") -> float:
        assert self._t is not None and end._t is not None, "elapsed_time() on an event that was never recorded"
        return (end._t - self._t) * 1000.0


def _shim_events() -> None:
    torch.cuda.Event = _WallClockEvent  # type: ignore[misc,assignment]
    _SHIMS_APPLIED.append("events")


def _shim_nvtx() -> None:
    import torch.cuda.nvtx as nvtx

    nvtx.range_push = lambda *args, **kwargs: None
    nvtx.range_pop = lambda *args, **kwargs: None
    _SHIMS_APPLIED.append("nvtx")


def _is_cuda(dev: object) -> bool:
    if isinstance(dev, torch.device):
        return dev.type == "cuda"
    return isinstance(dev, str) and dev.startswith("cuda")


class _CudaToCpuMode(TorchFunctionMode):
    """Rewrites hard-coded CUDA placement inside megatron's schedules and optimizers to CPU."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = dict(kwargs or {})
        if _is_cuda(kwargs.get("device")):
            kwargs["device"] = "cpu"
        if kwargs.get("pin_memory"):
            kwargs["pin_memory"] = False
        if func is torch.Tensor.cuda or func is torch.Tensor.pin_memory:
            return args[0]
        if func is torch.Tensor.to and len(args) > 1 and _is_cuda(args[1]):
            args = (args[0], "cpu", *args[2:])
        out = func(*args, **kwargs)
        # megatron's optimizers assert `param.type() == "torch.cuda.FloatTensor"` and friends.
        if func is torch.Tensor.type and len(args) == 1 and not kwargs and isinstance(out, str):
            if out.startswith("torch.") and not out.startswith("torch.cuda."):
                out = "torch.cuda." + out[len("torch.") :]
        return out


@contextlib.contextmanager
def cuda_to_cpu() -> Iterator[None]:
    """Context for megatron calls that hard-code CUDA (schedules, optimizer). Plain on GPU."""
    if has_cuda():
        yield
        return
    with _CudaToCpuMode():
        yield


def set_cpu_threads(num_threads: int | None = None) -> int:
    """Use every core we were given (SLURM's cpus-per-task, else all) unless told otherwise."""
    if num_threads is None:
        num_threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0")) or (os.cpu_count() or 1)
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        num_threads = max(1, num_threads // max(1, local_world))
    torch.set_num_threads(num_threads)
    return num_threads
