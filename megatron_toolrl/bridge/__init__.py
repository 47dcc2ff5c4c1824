"""HF <-> megatron-core weights: names, QKV/GQA interleave, gate/up fuse, tied embeddings, vocab
padding, TP split/merge, PP layer offsets; a streaming export (HF-named tensors, in buckets).

One short file per family (llama.py, qwen2.py, qwen3.py), chosen from `mapping.FAMILY_LAYER_MAPS`
by the ArchSpec family; the same maps serve both directions.
"""

from megatron_toolrl.bridge.convert import check_hf_state, hf_state_from_megatron, megatron_shard_state
from megatron_toolrl.bridge.export import DEFAULT_BUCKET_BYTES, export_hf_tensors
from megatron_toolrl.bridge.hf_io import HFCheckpoint, copy_hf_assets, read_hf_state, write_hf_checkpoint
from megatron_toolrl.bridge.load import load_hf_into_megatron
from megatron_toolrl.bridge.logits import causal_mask, megatron_logits
from megatron_toolrl.bridge.mapping import FAMILY_LAYER_MAPS, ShardLayout, model_maps, spec_name
from megatron_toolrl.bridge.mcore_ckpt import (
    CheckpointMeta, LoadedCheckpoint, load_megatron_checkpoint, read_checkpoint_meta, save_megatron_checkpoint,
)

__all__ = [
    "check_hf_state", "hf_state_from_megatron", "megatron_shard_state", "DEFAULT_BUCKET_BYTES", "export_hf_tensors",
    "HFCheckpoint", "copy_hf_assets", "read_hf_state", "write_hf_checkpoint", "load_hf_into_megatron",
    "causal_mask", "megatron_logits", "FAMILY_LAYER_MAPS", "ShardLayout", "model_maps", "spec_name",
    "CheckpointMeta", "LoadedCheckpoint", "load_megatron_checkpoint", "read_checkpoint_meta",
    "save_megatron_checkpoint",
]
