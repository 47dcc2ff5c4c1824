"""HF model directory -> megatron-core distributed checkpoint (torch_dist format).

    python checkpoints_conv/hf_to_mcore.py --hf-dir HF --out-dir CKPT [--tp N] [--pp M] [--dtype fp32]

With N x M > 1 it relaunches itself under torchrun with N x M ranks (unless already started by
torchrun or srun). Each rank builds its shard of the model, takes its slice of the HF tensors and
saves it. CKPT also gets `megatron_toolrl_checkpoint.json` (the HF config, source, layout) and
`hf_assets/` (tokenizer, chat template), which mcore_to_hf.py and the trainer read.
dist_checkpointing reshards on load, so the TP/PP chosen here do not bind later runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from checkpoints_conv import _cli  # noqa: E402

if TYPE_CHECKING:
    from megatron_toolrl.models import ArchSpec, ModelConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf-dir", type=Path, required=True, help="HF model directory (config.json + safetensors)")
    parser.add_argument("--out-dir", type=Path, required=True, help="checkpoint directory to create")
    parser.add_argument("--tp", type=int, default=1, help="tensor parallel size to save at (default 1)")
    parser.add_argument("--pp", type=int, default=1, help="pipeline parallel size to save at (default 1)")
    parser.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="parameter dtype of the checkpoint (default fp32: lossless for fp32/bf16 sources)")
    parser.add_argument("--force", action="store_true", help="replace an existing, non-empty --out-dir")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    from megatron_toolrl.bridge import check_hf_state, model_maps, read_hf_state
    from megatron_toolrl.errors import CheckpointError
    from megatron_toolrl.models import (
        ModelConfig, ParallelConfig, PrecisionConfig, arch_from_hf, load_hf_config, padded_vocab_size,
        validate_layout,
    )

    # Everything that can be wrong with the input is checked here, before any rank starts.
    hf_dir = args.hf_dir.resolve()
    if not hf_dir.is_dir():
        raise CheckpointError("no such HF model directory", path=hf_dir)
    hf_config = load_hf_config(hf_dir)
    arch = arch_from_hf(hf_config)
    cfg = ModelConfig(parallel=ParallelConfig(tensor_parallel=args.tp, pipeline_parallel=args.pp),
                      precision=PrecisionConfig(params_dtype=args.dtype))
    validate_layout(arch, cfg)
    state = read_hf_state(hf_dir)
    check_hf_state(model_maps(arch, padded_vocab_size(arch.vocab_size, cfg.make_vocab_size_divisible_by, args.tp)),
                   state, arch)
    out_dir = args.out_dir.resolve()

    launched = _cli.inside_launcher()
    if not launched and out_dir.exists() and any(out_dir.iterdir()):
        if not args.force:
            raise CheckpointError("output directory is not empty (--force to replace it)", path=out_dir)
        shutil.rmtree(out_dir)
    nproc = args.tp * args.pp
    if nproc > 1 and not launched:
        argv = [a for a in sys.argv[1:] if a != "--force"]  # the directory is already cleared
        return _cli.relaunch_under_torchrun(nproc, Path(__file__).resolve(), argv)
    return convert(hf_dir, out_dir, hf_config, arch, cfg)


def convert(hf_dir: Path, out_dir: Path, hf_config: dict, arch: ArchSpec, cfg: ModelConfig) -> int:
    from megatron_toolrl.bridge import CheckpointMeta, load_hf_into_megatron, save_megatron_checkpoint
    from megatron_toolrl.models import build_model_chunks
    from megatron_toolrl.parallel import destroy_parallel, init_parallel
    from megatron_toolrl.platform import cuda_to_cpu

    init_parallel(cfg.parallel)
    try:
        _cli.say(f"building {arch.hf_architecture} ({arch.num_layers} layers) at TP={cfg.parallel.tensor_parallel} "
                 f"PP={cfg.parallel.pipeline_parallel}, {cfg.precision.params_dtype}")
        # cuda_to_cpu: GPTModel's tied-embedding set-up under PP>1 calls Tensor.cuda() (megatron-core 0.16.1).
        with cuda_to_cpu():
            chunks = build_model_chunks(arch, cfg, perform_initialization=False)
        _cli.say(f"loading {hf_dir}")
        load_hf_into_megatron(chunks, arch, cfg, hf_dir)
        _cli.say(f"saving torch_dist checkpoint to {out_dir}")
        meta = CheckpointMeta.for_model(arch, hf_config, cfg, source=str(hf_dir))
        save_megatron_checkpoint(chunks, out_dir, meta, assets_from=hf_dir)
    finally:
        destroy_parallel()
    _cli.say(f"done: {out_dir}")
    return 0


if __name__ == "__main__":  # required: torch_dist saving spawns processes that re-import __main__
    _cli.run(main)
