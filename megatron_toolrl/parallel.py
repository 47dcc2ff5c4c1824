"""torch.distributed and megatron parallel-state set-up, in one place.

Ranks come from torchrun/srun environment variables (RANK, WORLD_SIZE, MASTER_ADDR/PORT); a
plain `python` process is a world of one. gloo on CPU, NCCL on GPU: the same code path.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from typing import Iterator

import torch
import torch.distributed as dist

from megatron_toolrl import platform
from megatron_toolrl.errors import ModelConfigError
from megatron_toolrl.models.config import ParallelConfig


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _slurm_env_to_torch() -> None:
    # srun without torchrun: SLURM names the rank and world; torch.distributed wants its own names.
    if "RANK" not in os.environ and "SLURM_PROCID" in os.environ and "SLURM_NTASKS" in os.environ:
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))


def init_distributed(timeout_minutes: int = 30) -> None:
    """Join (or create) the default process group; idempotent."""
    if dist.is_initialized():
        return
    _slurm_env_to_torch()
    timeout = datetime.timedelta(minutes=timeout_minutes)
    if platform.has_cuda():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if "RANK" not in os.environ:
        # A plain process is a world of one. Its rendezvous is passed explicitly rather than via
        # RANK/WORLD_SIZE/MASTER_* in os.environ, which child processes would inherit.
        dist.init_process_group(platform.default_backend(), init_method=f"tcp://127.0.0.1:{free_port()}",
                                rank=0, world_size=1, timeout=timeout)
        return
    dist.init_process_group(platform.default_backend(), timeout=timeout)


def init_parallel(parallel: ParallelConfig, seed: int = 1234) -> None:
    """Process group + megatron's TP/PP/DP groups + per-rank RNG streams."""
    from megatron.core import parallel_state

    platform.install_cpu_shims()
    init_distributed()
    world = dist.get_world_size()
    if world % parallel.model_parallel_size:
        raise ModelConfigError(
            f"world size {world} is not a multiple of TP x PP = {parallel.tensor_parallel} x {parallel.pipeline_parallel}"
        )
    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=parallel.tensor_parallel,
        pipeline_model_parallel_size=parallel.pipeline_parallel,
        virtual_pipeline_model_parallel_size=parallel.virtual_pipeline_parallel,
    )
    seed_everything(seed)


def seed_everything(seed: int) -> None:
    """Same CPU seed on every rank (CPU initialisation draws from it and TP ranks must agree),
    then megatron's per-TP-rank streams."""
    from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed

    torch.manual_seed(seed)
    model_parallel_cuda_manual_seed(seed)
    torch.manual_seed(seed)


def destroy_parallel() -> None:
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def single_process_parallel(seed: int = 1234) -> Iterator[None]:
    """TP=PP=1 megatron state in a process that has none (tools, tests, meta-device counts).

    An existing state is reused only if it is already TP=PP=1; otherwise this is an error,
    because a model built under it would be a shard, not the whole model.
    """
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        if (
            parallel_state.get_tensor_model_parallel_world_size() != 1
            or parallel_state.get_pipeline_model_parallel_world_size() != 1
        ):
            raise ModelConfigError("single_process_parallel() inside a TP/PP>1 parallel state")
        yield
        return
    owned_pg = not dist.is_initialized()
    init_parallel(ParallelConfig(), seed=seed)
    try:
        yield
    finally:
        parallel_state.destroy_model_parallel()
        if owned_pg:
            dist.destroy_process_group()
