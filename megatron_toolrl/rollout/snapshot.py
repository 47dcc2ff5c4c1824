"""The last pushed weights, kept as safetensors shards so a restarted engine can be re-synced.

Every bucket of a push is written as one shard file. An index maps each tensor name to the shard
that holds its newest value, so partial pushes (a subset of tensors) compose: a restarted engine
loads the model directory first, then every shard in the index. Shards no longer referenced by
the index are deleted when a push is committed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


@dataclass(frozen=True)
class Shard:
    """One safetensors file and the tensor names to load from it, in load order."""

    path: str
    names: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "names": list(self.names)}


def read_shards(shards: Sequence[Shard]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (name, tensor) from shard files in order (the inverse of `WeightSnapshot.write_bucket`)."""
    for shard in shards:
        with safe_open(shard.path, framework="pt", device="cpu") as f:
            for name in shard.names:
                yield name, f.get_tensor(name)


def default_snapshot_dir() -> Path:
    """A fresh directory in /dev/shm (RAM-backed) when it exists, else in the temp dir."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return Path(tempfile.mkdtemp(prefix=f"megatron_toolrl_weights_{os.getpid()}_", dir=base))


class WeightSnapshot:
    """A directory of shards plus the name -> shard index of the newest committed values."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else default_snapshot_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = itertools.count()
        self._index: dict[str, Shard] = {}

    def write_bucket(self, bucket: Sequence[tuple[str, torch.Tensor]]) -> Shard:
        """Write one bucket to a new shard file (not yet part of the index)."""
        tensors: dict[str, torch.Tensor] = {}
        for name, tensor in bucket:
            if name in tensors:
                raise ValueError(f"tensor {name!r} appears twice in one bucket")
            tensors[name] = tensor.detach().to("cpu").contiguous()
        path = self.directory / f"shard_{next(self._counter):06d}.safetensors"
        save_file(tensors, str(path))
        return Shard(path=str(path), names=tuple(tensors))

    def commit(self, shards: Sequence[Shard]) -> None:
        """Make `shards` (one push) the newest values of their tensors; delete shards nothing points to."""
        seen: set[str] = set()
        for shard in shards:
            for name in shard.names:
                if name in seen:
                    self.discard(shards)
                    raise ValueError(f"tensor {name!r} was pushed twice in one update")
                seen.add(name)
        old_paths = {s.path for s in self._index.values()}
        for shard in shards:
            for name in shard.names:
                self._index[name] = shard
        live = {s.path for s in self._index.values()}
        for path in old_paths - live:
            Path(path).unlink(missing_ok=True)
        for shard in shards:
            if shard.path not in live:
                Path(shard.path).unlink(missing_ok=True)

    def discard(self, shards: Sequence[Shard]) -> None:
        """Delete shards of a push that will not be committed."""
        live = {s.path for s in self._index.values()}
        for shard in shards:
            if shard.path not in live:
                Path(shard.path).unlink(missing_ok=True)

    def manifest(self) -> list[Shard]:
        """Every committed tensor, grouped by shard, in write order."""
        shards = {s.path: s for s in self._index.values()}
        # A later partial push may have superseded some names of an older shard: load only the rest.
        return [Shard(path, tuple(n for n in s.names if self._index[n].path == path)) for path, s in sorted(shards.items())]

    @property
    def empty(self) -> bool:
        return not self._index

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self._index.clear()
