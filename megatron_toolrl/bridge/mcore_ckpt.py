"""Megatron distributed checkpoints (torch_dist format) of converted models, with the metadata
that says which HF architecture they hold.

A checkpoint directory is megatron's own files (metadata.json, common.pt, *.distcp) plus
`megatron_toolrl_checkpoint.json` (architecture, HF config, source, layout it was saved at) and
`hf_assets/` (tokenizer, chat template, generation config of the source), so that a release can
be exported from it alone. dist_checkpointing reshards on load: a checkpoint saved at TP=2 loads
at any TP that divides the heads and its padded vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, get_args

import torch
import torch.distributed as dist

from megatron_toolrl.bridge.hf_io import copy_hf_assets
from megatron_toolrl.bridge.load import unwrap_chunks
from megatron_toolrl.bridge.mapping import TransformerImpl
from megatron_toolrl.errors import CheckpointError, ModelConfigError
from megatron_toolrl.models.arch import ArchSpec, arch_from_hf
from megatron_toolrl.models.builder import build_model_chunks, padded_vocab_size
from megatron_toolrl.models.config import Dtype, ModelConfig, ParallelConfig, PrecisionConfig
from megatron_toolrl.platform import cuda_to_cpu

META_FILE = "megatron_toolrl_checkpoint.json"
ASSETS_DIR = "hf_assets"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CheckpointMeta:
    """What a converted megatron checkpoint holds and how it was laid out when saved."""

    hf_config: dict[str, Any]
    """The source model's HF config.json, verbatim: the architecture is read from it on load."""
    source: str
    """Where the weights came from (an HF directory, or a training run)."""
    padded_vocab_size: int
    """Rows of the saved embedding/output layer (megatron pads the vocabulary); loading must use the same."""
    params_dtype: Dtype
    transformer_impl: TransformerImpl
    tensor_parallel: int
    pipeline_parallel: int
    format_version: int = FORMAT_VERSION

    @classmethod
    def for_model(cls, arch: ArchSpec, hf_config: dict[str, Any], cfg: ModelConfig, source: str) -> "CheckpointMeta":
        return cls(
            hf_config=hf_config, source=source,
            padded_vocab_size=padded_vocab_size(arch.vocab_size, cfg.make_vocab_size_divisible_by,
                                                cfg.parallel.tensor_parallel),
            params_dtype=cfg.precision.params_dtype, transformer_impl=cfg.transformer_impl,
            tensor_parallel=cfg.parallel.tensor_parallel, pipeline_parallel=cfg.parallel.pipeline_parallel,
        )

    def arch(self) -> ArchSpec:
        return arch_from_hf(self.hf_config)

    def model_config(self, parallel: ParallelConfig, transformer_impl: TransformerImpl = "local") -> ModelConfig:
        """A ModelConfig for loading under `parallel`, padding the vocabulary as it was saved."""
        tp = parallel.tensor_parallel
        if self.padded_vocab_size % tp:
            raise ModelConfigError(
                f"TP={tp} does not divide the checkpoint's padded vocabulary of {self.padded_vocab_size} rows "
                f"(saved at TP={self.tensor_parallel}); load it at a TP that divides {self.padded_vocab_size}")
        return ModelConfig(
            transformer_impl=transformer_impl, parallel=parallel,
            precision=PrecisionConfig(params_dtype=self.params_dtype),
            # padded_vocab_size() rounds up to a multiple of this x TP: exactly the saved row count.
            make_vocab_size_divisible_by=self.padded_vocab_size // tp,
        )


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def write_checkpoint_meta(ckpt_dir: str | Path, meta: CheckpointMeta) -> None:
    (Path(ckpt_dir) / META_FILE).write_text(json.dumps(asdict(meta), indent=2, sort_keys=True) + "\n")


def read_checkpoint_meta(ckpt_dir: str | Path) -> CheckpointMeta:
    """The metadata of a converted checkpoint, checked: a dist checkpoint with a readable META_FILE."""
    from megatron.core.dist_checkpointing import check_is_distributed_checkpoint

    path = Path(ckpt_dir)
    if not path.is_dir():
        raise CheckpointError("no such checkpoint directory", path=path)
    if not check_is_distributed_checkpoint(str(path)):
        raise CheckpointError("not a megatron distributed checkpoint (no readable metadata.json)", path=path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise CheckpointError(f"no {META_FILE}: the checkpoint does not say which architecture it holds "
                              "(convert with checkpoints_conv/hf_to_mcore.py)", path=path)
    try:
        raw = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"not valid JSON: {err.msg}", path=meta_path, line=err.lineno) from err
    if not isinstance(raw, dict):
        raise CheckpointError("expected a JSON object", path=meta_path)
    unknown = sorted(set(raw) - {f.name for f in fields(CheckpointMeta)})
    if unknown:
        raise CheckpointError("unknown key", path=meta_path, field=unknown[0])
    for f in fields(CheckpointMeta):
        if f.name not in raw and f.name != "format_version":
            raise CheckpointError("missing", path=meta_path, field=f.name)
    if raw.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        raise CheckpointError(f"format version {raw['format_version']}, this code reads {FORMAT_VERSION}",
                              path=meta_path, field="format_version")
    if not isinstance(raw["hf_config"], dict):
        raise CheckpointError("expected the HF config object", path=meta_path, field="hf_config")
    for name in ("padded_vocab_size", "tensor_parallel", "pipeline_parallel"):
        if not isinstance(raw[name], int) or isinstance(raw[name], bool) or raw[name] < 1:
            raise CheckpointError(f"expected a positive integer, got {raw[name]!r}", path=meta_path, field=name)
    for name, choices in (("params_dtype", get_args(Dtype)), ("transformer_impl", get_args(TransformerImpl))):
        if raw[name] not in choices:
            raise CheckpointError(f"{raw[name]!r} is not one of {list(choices)}", path=meta_path, field=name)
    meta = CheckpointMeta(**raw)
    try:
        meta.arch()
    except ModelConfigError as err:
        raise CheckpointError(str(err), path=meta_path, field="hf_config") from err
    return meta


def save_megatron_checkpoint(model_chunks: Sequence[torch.nn.Module], ckpt_dir: str | Path, meta: CheckpointMeta,
                             assets_from: str | Path | None = None) -> None:
    """Collective: save this rank's shards with dist_checkpointing (torch_dist), then the metadata.

    `ckpt_dir` must not exist or be empty. `assets_from`: an HF directory whose tokenizer and
    chat-template files are copied into `hf_assets/`.
    """
    from megatron.core import dist_checkpointing

    chunks = unwrap_chunks(model_chunks)
    if len(chunks) != 1:
        raise ModelConfigError("saving interleaved (virtual pipeline) models is not supported here")
    path = Path(ckpt_dir)
    # Every rank checks (a shared filesystem: they all see the same), so none waits at the barrier
    # for a rank that raised.
    if path.exists() and any(path.iterdir()):
        raise CheckpointError("output directory is not empty", path=path)
    _barrier()
    if _rank() == 0:
        path.mkdir(parents=True, exist_ok=True)  # dist_checkpointing.save needs it to exist
    _barrier()
    dist_checkpointing.save(chunks[0].sharded_state_dict(), str(path))
    if _rank() == 0:
        write_checkpoint_meta(path, meta)
        if assets_from is not None:
            copy_hf_assets(assets_from, path / ASSETS_DIR)
    _barrier()


@dataclass
class LoadedCheckpoint:
    """A converted checkpoint loaded into this rank's model chunk."""

    chunks: list[torch.nn.Module]
    arch: ArchSpec
    cfg: ModelConfig
    """The config the chunks were built with (the current parallel layout, the saved vocab padding)."""
    meta: CheckpointMeta
    path: Path

    @property
    def assets_dir(self) -> Path | None:
        """The source's tokenizer/chat-template files, when the checkpoint carries them."""
        assets = self.path / ASSETS_DIR
        return assets if assets.is_dir() else None


def _describe(err: BaseException) -> str:
    """One line for a load failure; torch's CheckpointException (a BaseException) wraps each rank's error."""
    from torch.distributed.checkpoint.api import CheckpointException

    if isinstance(err, CheckpointException) and err.failures:
        rank, (inner, _trace) = next(iter(err.failures.items()))
        return f"rank {rank}: {type(inner).__name__}: {inner}"
    return f"{type(err).__name__}: {err}"


def load_megatron_checkpoint(ckpt_dir: str | Path, transformer_impl: TransformerImpl = "local") -> LoadedCheckpoint:
    """Build this rank's model chunk under the current megatron parallel state and load the
    checkpoint into it (dist_checkpointing reshards)."""
    from megatron.core import dist_checkpointing, parallel_state
    from torch.distributed.checkpoint.api import CheckpointException

    path = Path(ckpt_dir)
    meta = read_checkpoint_meta(path)
    arch = meta.arch()
    parallel = ParallelConfig(
        tensor_parallel=parallel_state.get_tensor_model_parallel_world_size(),
        pipeline_parallel=parallel_state.get_pipeline_model_parallel_world_size(),
    )
    cfg = meta.model_config(parallel, transformer_impl)
    # cuda_to_cpu: GPTModel's tied-embedding set-up under PP>1 calls Tensor.cuda() (megatron-core 0.16.1).
    with cuda_to_cpu():
        chunks = build_model_chunks(arch, cfg, perform_initialization=False)
    (chunk,) = chunks
    try:
        state = dist_checkpointing.load(chunk.sharded_state_dict(), str(path))
        chunk.load_state_dict(state, strict=True)
    except (Exception, CheckpointException) as err:  # many types for a damaged checkpoint; name it here
        raise CheckpointError(f"cannot load the megatron checkpoint: {_describe(err)}", path=path) from err
    return LoadedCheckpoint(chunks, arch, cfg, meta, path)
