"""Reading and writing HF checkpoint directories (safetensors, single file or sharded with an index)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from megatron_toolrl.errors import CheckpointError

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3
"""transformers' save_pretrained default shard size (5 GB)."""

# Files of an HF model directory that are not weights or config.json: tokenizer, chat templates,
# generation defaults. Copied along by the converters so a checkpoint is a complete release.
_ASSET_GLOBS = (
    "tokenizer*", "special_tokens_map.json", "added_tokens.json", "vocab.json", "vocab.txt", "merges.txt",
    "*.model", "chat_template*", "generation_config.json", "additional_chat_templates",
)

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


class HFCheckpoint(Mapping[str, Tensor]):
    """The tensors of an HF safetensors checkpoint, read from disk on access, one at a time.

    A Mapping, so it can stand wherever a state dict of full HF tensors is expected, without
    holding the model in memory.
    """

    def __init__(self, hf_dir: str | Path):
        self.path = Path(hf_dir)
        if not self.path.is_dir():
            raise CheckpointError("not a directory", path=self.path)
        self.weight_map = _weight_map(self.path)
        self._handles: dict[str, Any] = {}

    def _handle(self, file: str):
        if file not in self._handles:
            try:
                self._handles[file] = safe_open(str(self.path / file), framework="pt")
            except Exception as err:  # safetensors raises its own error types for bad headers
                raise CheckpointError(f"cannot read safetensors file: {err}", path=self.path / file) from err
        return self._handles[file]

    def file_of(self, name: str) -> Path:
        return self.path / self.weight_map[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle(self.weight_map[name]).get_slice(name).get_shape())

    def __getitem__(self, name: str) -> Tensor:
        if name not in self.weight_map:
            raise KeyError(name)
        return self._handle(self.weight_map[name]).get_tensor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.weight_map)

    def __len__(self) -> int:
        return len(self.weight_map)


def _weight_map(hf_dir: Path) -> dict[str, str]:
    index = hf_dir / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except json.JSONDecodeError as err:
            raise CheckpointError(f"not valid JSON: {err.msg}", path=index, line=err.lineno) from err
        except (KeyError, TypeError) as err:
            raise CheckpointError("no 'weight_map' object", path=index, field="weight_map") from err
        for file in sorted(set(weight_map.values())):
            if not (hf_dir / file).is_file():
                raise CheckpointError(f"the index names {file!r}, which does not exist", path=index, field="weight_map")
        return dict(weight_map)
    single = hf_dir / SINGLE_FILE
    if single.is_file():
        try:
            with safe_open(str(single), framework="pt") as f:
                return {name: SINGLE_FILE for name in f.keys()}
        except Exception as err:
            raise CheckpointError(f"cannot read safetensors file: {err}", path=single) from err
    others = sorted(p.name for p in hf_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".gguf"))
    hint = f" (found {', '.join(others)}: only safetensors checkpoints are read)" if others else ""
    raise CheckpointError(f"no {SINGLE_FILE} or {INDEX_FILE}{hint}", path=hf_dir)


def read_hf_state(hf_dir: str | Path) -> HFCheckpoint:
    """A lazy Mapping name -> full tensor over the safetensors files of an HF model directory."""
    return HFCheckpoint(hf_dir)


def tensor_shape(state: Mapping[str, Tensor], name: str) -> tuple[int, ...]:
    """Shape of `state[name]` without reading the tensor when `state` is on disk."""
    if isinstance(state, HFCheckpoint):
        return state.shape(name)
    return tuple(state[name].shape)


def copy_hf_assets(src_dir: str | Path, dst_dir: str | Path) -> list[str]:
    """Copy tokenizer files, chat templates and generation_config.json; returns the names copied."""
    src, dst = Path(src_dir), Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    copied = []
    for pattern in _ASSET_GLOBS:
        for path in sorted(src.glob(pattern)):
            if path.is_dir():
                shutil.copytree(path, dst / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, dst / path.name)
            copied.append(path.name)
    return copied


def _flush_shard(tensors: dict[str, Tensor], out_dir: Path, index: int) -> str:
    name = f".shard-{index:05d}.safetensors.partial"
    save_file(tensors, str(out_dir / name), metadata={"format": "pt"})
    return name


def write_hf_checkpoint(
    tensors: Iterable[list[tuple[str, Tensor]]],
    out_dir: str | Path,
    hf_config: Mapping[str, Any],
    *,
    tokenizer_dir: str | Path | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> list[str]:
    """Write an HF model directory: safetensors weights (sharded with an index above
    `max_shard_bytes`), config.json, generation_config.json, and tokenizer/chat-template files
    copied from `tokenizer_dir`. Returns the file names written.

    `tensors` is an iterable of buckets, as `export_hf_tensors` yields; at most one shard is held
    in memory. The tensors are copied, so views of live parameters are fine.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shard: dict[str, Tensor] = {}
    shard_bytes = total_bytes = 0
    partials: list[tuple[str, list[str]]] = []
    dtype: torch.dtype | None = None
    seen: set[str] = set()
    for bucket in tensors:
        for name, tensor in bucket:
            if name in seen:
                raise CheckpointError(f"tensor {name!r} was given twice", path=out)
            seen.add(name)
            nbytes = tensor.numel() * tensor.element_size()
            if shard and shard_bytes + nbytes > max_shard_bytes:
                partials.append((_flush_shard(shard, out, len(partials)), list(shard)))
                shard, shard_bytes = {}, 0
            # A copy: the exported tensors may be views sharing storage (q/k/v of one fused
            # parameter), which safetensors refuses, or live parameters that will change.
            shard[name] = tensor.detach().to("cpu", copy=True).contiguous()
            shard_bytes += nbytes
            total_bytes += nbytes
            dtype = dtype or tensor.dtype
    if shard or not partials:
        partials.append((_flush_shard(shard, out, len(partials)), list(shard)))

    written: list[str] = []
    if len(partials) == 1:
        os.replace(out / partials[0][0], out / SINGLE_FILE)
        written.append(SINGLE_FILE)
        (out / INDEX_FILE).unlink(missing_ok=True)
    else:
        weight_map: dict[str, str] = {}
        for i, (partial, names) in enumerate(partials):
            final = f"model-{i + 1:05d}-of-{len(partials):05d}.safetensors"
            os.replace(out / partial, out / final)
            weight_map.update({n: final for n in names})
            written.append(final)
        (out / INDEX_FILE).write_text(json.dumps(
            {"metadata": {"total_size": total_bytes}, "weight_map": weight_map}, indent=2) + "\n")
        written.append(INDEX_FILE)
        (out / SINGLE_FILE).unlink(missing_ok=True)

    config = dict(hf_config)
    if dtype is not None:
        # transformers 5 reads "dtype"; older versions "torch_dtype". Keep whichever the source had.
        config["dtype"] = _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch."))
        if "torch_dtype" in config:
            config["torch_dtype"] = config["dtype"]
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    written.append("config.json")

    if tokenizer_dir is not None:
        written.extend(copy_hf_assets(tokenizer_dir, out))
    if not (out / "generation_config.json").is_file():
        generation = {k: config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if config.get(k) is not None}
        (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        written.append("generation_config.json")
    return written
