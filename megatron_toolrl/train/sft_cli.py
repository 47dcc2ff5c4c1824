"""`megatron-toolrl sft CONFIG [key=value ...] --out-dir HF`: SFT only, released as an HF checkpoint.

Uses the recipe's model, data, prompt and `sft` sections (the papers' SFT baselines; an SFT'd
checkpoint is also a warm start: point a GRPO recipe's hf_dir at it).
"""

from __future__ import annotations

import argparse
import json
import sys

from megatron_toolrl.config import load_config
from megatron_toolrl.errors import ToolRLError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="megatron-toolrl sft", description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--out-dir", required=True, help="where the HF checkpoint is written")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    from megatron_toolrl.bridge import write_hf_checkpoint
    from megatron_toolrl.models import arch_from_hf, load_hf_config
    from megatron_toolrl.parallel import destroy_parallel, init_parallel
    from megatron_toolrl.train.config import TrainConfig
    from megatron_toolrl.train.run import is_driver
    from megatron_toolrl.train.sft import run_sft

    try:
        cfg = load_config(TrainConfig, args.config, args.overrides)
    except ToolRLError as err:
        print(f"megatron-toolrl sft: {err}", file=sys.stderr)
        return 2
    if cfg.sft.steps < 1:
        print("megatron-toolrl sft: sft.steps must be >= 1", file=sys.stderr)
        return 2
    init_parallel(cfg.model.parallel, seed=cfg.seed)
    losses: list[float] = []
    weights = run_sft(cfg, arch_from_hf(cfg.hf_dir), AutoTokenizer.from_pretrained(cfg.hf_dir), cfg.hf_dir,
                      log=lambda step, m: losses.append(m["sft/loss"]))
    if is_driver():
        write_hf_checkpoint([list(weights.items())], args.out_dir, load_hf_config(cfg.hf_dir), tokenizer_dir=cfg.hf_dir)
        print(json.dumps({"steps": cfg.sft.steps, "first_loss": losses[0], "final_loss": losses[-1], "out_dir": args.out_dir}))
    destroy_parallel()
    return 0
