"""Megatron distributed checkpoint (from hf_to_mcore.py or training) -> HF release directory.

    python checkpoints_conv/mcore_to_hf.py --mcore-dir CKPT --out-dir HF [--dtype bf16] [--max-shard-size 5GB]

Writes model.safetensors (sharded with an index above --max-shard-size), config.json,
generation_config.json, the tokenizer and chat template (from the checkpoint's hf_assets/ or
--tokenizer-dir). The result loads with transformers' AutoModelForCausalLM / AutoTokenizer.

Runs as one process: dist_checkpointing reshards whatever TP/PP the checkpoint was saved at, and
the export streams tensors to disk one shard at a time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from checkpoints_conv import _cli  # noqa: E402

_DTYPES = ("fp32", "bf16", "fp16")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mcore-dir", type=Path, required=True, help="megatron checkpoint directory")
    parser.add_argument("--out-dir", type=Path, required=True, help="HF directory to write")
    parser.add_argument("--tokenizer-dir", type=Path, default=None,
                        help="take tokenizer/chat-template files from here instead of the checkpoint's hf_assets/")
    parser.add_argument("--dtype", choices=_DTYPES, default=None, help="cast weights (default: the checkpoint's dtype)")
    parser.add_argument("--max-shard-size", type=_cli.parse_size, default="5GB",
                        help="largest safetensors file before sharding (default 5GB)")
    parser.add_argument("--force", action="store_true", help="replace an existing, non-empty --out-dir")
    args = parser.parse_args()

    import tqdm

    from megatron_toolrl.bridge import export_hf_tensors, load_megatron_checkpoint, model_maps, write_hf_checkpoint
    from megatron_toolrl.bridge.mcore_ckpt import read_checkpoint_meta
    from megatron_toolrl.errors import CheckpointError
    from megatron_toolrl.models import torch_dtype
    from megatron_toolrl.parallel import single_process_parallel

    ckpt_dir = args.mcore_dir.resolve()
    read_checkpoint_meta(ckpt_dir)  # the clear errors first: missing dir, not a checkpoint, no metadata
    out_dir = args.out_dir.resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        if not args.force:
            raise CheckpointError("output directory is not empty (--force to replace it)", path=out_dir)
        shutil.rmtree(out_dir)
    if args.tokenizer_dir is not None and not args.tokenizer_dir.is_dir():
        raise CheckpointError("no such tokenizer directory", path=args.tokenizer_dir)

    with single_process_parallel():
        _cli.say(f"loading {ckpt_dir}")
        loaded = load_megatron_checkpoint(ckpt_dir)
        tokenizer_dir = args.tokenizer_dir or loaded.assets_dir
        if tokenizer_dir is None:
            raise CheckpointError("the checkpoint has no hf_assets/ with tokenizer files: pass --tokenizer-dir",
                                  path=ckpt_dir)
        dtype = torch_dtype(args.dtype) if args.dtype else None
        element = (dtype or torch_dtype(loaded.cfg.precision.params_dtype)).itemsize
        total = sum(element * _numel(s) for m in model_maps(loaded.arch, loaded.meta.padded_vocab_size)
                    for s in m.hf_shapes())
        _cli.say(f"exporting {loaded.arch.hf_architecture} to {out_dir}")
        with tqdm.tqdm(total=total, unit="B", unit_scale=True, desc="tensors", disable=None) as bar:
            def counted(buckets):
                for bucket in buckets:
                    yield bucket
                    bar.update(sum(t.numel() * t.element_size() for _, t in bucket))

            written = write_hf_checkpoint(
                counted(export_hf_tensors(loaded.chunks, loaded.arch, loaded.cfg, dtype=dtype)), out_dir,
                loaded.meta.hf_config, tokenizer_dir=tokenizer_dir, max_shard_bytes=args.max_shard_size)
    _cli.say(f"done: {out_dir} ({', '.join(written)})")
    return 0


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    _cli.run(main)
