"""Check a megatron checkpoint against an HF model: logits on a fixed random batch.

    python checkpoints_conv/verify.py --hf-dir HF --mcore-dir CKPT [--tol 1e-4]

HF transformers (eager attention, fp32) computes the reference; the megatron model is the
checkpoint loaded in this process (TP=PP=1, resharded by dist_checkpointing). The last line
printed is JSON with max_abs_diff and mean_abs_diff over the real vocabulary. Exit code 1 when
max_abs_diff exceeds --tol, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`

from checkpoints_conv import _cli  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf-dir", type=Path, required=True)
    parser.add_argument("--mcore-dir", type=Path, required=True)
    parser.add_argument("--tol", type=float, default=1e-4, help="largest allowed |logit difference| (default 1e-4: fp32)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random token batch")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from megatron_toolrl.bridge import load_megatron_checkpoint, megatron_logits, read_checkpoint_meta
    from megatron_toolrl.errors import CheckpointError, ModelConfigError
    from megatron_toolrl.models import arch_from_hf
    from megatron_toolrl.parallel import single_process_parallel

    hf_dir, ckpt_dir = args.hf_dir.resolve(), args.mcore_dir.resolve()
    if not hf_dir.is_dir():
        raise CheckpointError("no such HF model directory", path=hf_dir)
    hf_arch, meta = arch_from_hf(hf_dir), read_checkpoint_meta(ckpt_dir)
    if hf_arch != meta.arch():
        raise ModelConfigError(f"{hf_dir} and {ckpt_dir} hold different architectures: {hf_arch} vs {meta.arch()}")

    input_ids = torch.randint(0, hf_arch.vocab_size, (args.batch, args.seq_len),
                              generator=torch.Generator().manual_seed(args.seed))
    _cli.say(f"HF logits from {hf_dir}")
    hf_model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        reference = hf_model(input_ids=input_ids).logits.float()
    del hf_model
    _cli.say(f"megatron logits from {ckpt_dir}")
    with single_process_parallel():
        loaded = load_megatron_checkpoint(ckpt_dir)
        logits = megatron_logits(loaded.chunks, input_ids, hf_arch.vocab_size)
    diff = (logits - reference).abs()
    result = {
        "max_abs_diff": diff.max().item(), "mean_abs_diff": diff.mean().item(), "tol": args.tol,
        "ok": diff.max().item() <= args.tol, "batch": [args.batch, args.seq_len],
        "checkpoint_dtype": loaded.cfg.precision.params_dtype, "hf_dir": str(hf_dir), "mcore_dir": str(ckpt_dir),
    }
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    _cli.run(main)
