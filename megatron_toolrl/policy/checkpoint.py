"""On-disk layout of a policy checkpoint, atomic saving, and validation on load.

    <dir>/
      mcore/               megatron dist_checkpointing (torch_dist): model + optimizer shards,
                           keyed by global tensor names, so any TP/PP layout can read them
      rng/rank_<r>.pt      this rank's RNG states (restored only at the same world layout)
      policy_state.json    written last: format version, layout, LR-scheduler state and the
                           caller's JSON-able extra state (train step, data cursor, ...)

A save goes to `<dir>.tmp` and is renamed to `<dir>` only once every rank has finished, so a
killed save leaves a `.tmp` directory, never a `<dir>` that looks complete. An existing `<dir>`
is replaced (moved to `<dir>.old`, then deleted).

dist_checkpointing's torch_dist writer starts helper processes with the spawn method: the entry
script must have an `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from megatron_toolrl.errors import CheckpointError

FORMAT_VERSION = 1
STATE_FILE = "policy_state.json"
MCORE_DIR = "mcore"
RNG_DIR = "rng"


@dataclass(frozen=True)
class CheckpointState:
    """The JSON part of a checkpoint (`policy_state.json`)."""

    layout: dict[str, Any]
    """Parallel layout and precision at save time (tensor/pipeline/data parallel, dtype, optimizer)."""
    scheduler: dict[str, Any]
    """LRScheduler.state_dict()."""
    extra: dict[str, Any]
    """The caller's state, returned as given to save."""
    optimizer_state: bool
    """Whether mcore/ holds optimizer state. Adam has none before its first update, and a
    checkpoint taken then holds weights only."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "layout": self.layout,
                "scheduler": self.scheduler,
                "extra": self.extra,
                "optimizer_state": self.optimizer_state,
            },
            indent=2,
            sort_keys=True,
        )


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _rng_state() -> dict[str, Any]:
    from megatron.core.tensor_parallel.random import get_cuda_rng_tracker

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "tracker": get_cuda_rng_tracker().get_states()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    from megatron.core.tensor_parallel.random import get_cuda_rng_tracker

    torch.set_rng_state(state["torch"])
    get_cuda_rng_tracker().set_states(state["tracker"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint_dir(path: str | Path, sharded_state_dict: dict, state: CheckpointState) -> None:
    """Write `sharded_state_dict` (model + optimizer ShardedTensors) and `state` to `path`, atomically.

    Collective: every rank calls it with its own shards.
    """
    from megatron.core import dist_checkpointing

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        payload = state.to_json()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"extra state is not JSON-serialisable: {err}", path=path, field="extra") from err
    if _rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / MCORE_DIR).mkdir(parents=True)  # dist_checkpointing.save needs an existing directory
        (tmp / RNG_DIR).mkdir()
    _barrier()
    dist_checkpointing.save(sharded_state_dict, str(tmp / MCORE_DIR))
    torch.save(_rng_state(), tmp / RNG_DIR / f"rank_{_rank():05d}.pt")
    _barrier()
    if _rank() == 0:
        with open(tmp / STATE_FILE, "w") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        old = path.with_name(path.name + ".old")
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    _barrier()


def read_checkpoint_state(path: str | Path) -> CheckpointState:
    """Validate that `path` is a complete policy checkpoint and read its JSON state."""
    from megatron.core.dist_checkpointing import check_is_distributed_checkpoint

    path = Path(path)
    if not path.is_dir():
        hint = f" (an unfinished save left {path.name}.tmp)" if path.with_name(path.name + ".tmp").exists() else ""
        raise CheckpointError(f"no checkpoint directory{hint}", path=path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{STATE_FILE} is missing: not a policy checkpoint, or an incomplete one", path=path)
    try:
        raw = json.loads(state_file.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"not valid JSON: {err.msg}", path=state_file, line=err.lineno) from err
    if not isinstance(raw, dict):
        raise CheckpointError("expected a JSON object", path=state_file)
    for key in ("format_version", "layout", "scheduler", "extra", "optimizer_state"):
        if key not in raw:
            raise CheckpointError("missing", path=state_file, field=key)
    if raw["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"format version {raw['format_version']} is not {FORMAT_VERSION}", path=state_file, field="format_version"
        )
    mcore = path / MCORE_DIR
    if not mcore.is_dir() or not check_is_distributed_checkpoint(str(mcore)):
        raise CheckpointError("not a megatron distributed checkpoint (metadata.json missing)", path=mcore)
    return CheckpointState(
        layout=raw["layout"],
        scheduler=raw["scheduler"],
        extra=raw["extra"],
        optimizer_state=bool(raw["optimizer_state"]),
    )


def load_checkpoint_dir(path: str | Path, sharded_state_dict: dict) -> tuple[dict, CheckpointState]:
    """Load the shards this rank's `sharded_state_dict` asks for (any layout), plus the JSON state.

    Collective. Returns the loaded (plain tensor) state dict and the checkpoint's state.
    """
    from megatron.core import dist_checkpointing
    from torch.distributed.checkpoint.api import CheckpointException as TorchCheckpointException

    path = Path(path)
    state = read_checkpoint_state(path)
    try:
        loaded = dist_checkpointing.load(sharded_state_dict, str(path / MCORE_DIR))
    # Missing or truncated shard files surface from megatron, torch.distributed.checkpoint or
    # pickle with a dozen unrelated exception types; all of them mean this directory is unusable.
    # torch's CheckpointException derives from BaseException, hence the explicit second entry.
    except (Exception, TorchCheckpointException) as err:  # noqa: BLE001
        raise CheckpointError(f"cannot load the sharded state: {_root_cause(err)}", path=path / MCORE_DIR) from err
    return loaded, state


def _root_cause(err: BaseException) -> str:
    """The failing ranks' own errors, without torch.distributed.checkpoint's traceback dump."""
    from torch.distributed.checkpoint.api import CheckpointException as TorchCheckpointException

    if isinstance(err, TorchCheckpointException):
        causes = {f"{type(exc).__name__}: {exc}" for exc, _ in err.failures.values()}
        return f"ranks {sorted(err.failures)}: " + "; ".join(sorted(causes))
    return f"{type(err).__name__}: {err}"


def restore_rng(path: str | Path, same_layout: bool) -> bool:
    """Restore this rank's RNG states if the checkpoint was saved at the same layout. Returns
    whether it did (at another layout the per-rank streams do not correspond)."""
    rng_file = Path(path) / RNG_DIR / f"rank_{_rank():05d}.pt"
    if not same_layout or not rng_file.is_file():
        return False
    _set_rng_state(torch.load(rng_file, weights_only=True))
    return True
