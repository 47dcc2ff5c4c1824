"""Training throughput (forward + backward tokens/s) and MFU: megatron-core (local spec) vs HF
transformers LlamaForCausalLM, on the SmolLM2-135M shape, in one process.

    python bench/bench_train_throughput.py [--dtypes fp32,bf16] [--batch 8] [--seq 256] [--reps 3] [--json out.json]

Both models hold the same random weights (copied HF -> megatron with the bridge), so the first
loss of each must agree, which the table shows as a check that the two do the same work. Steps
alternate A-B-A-B so that background load on a shared machine hits both alike; the table gives
the median over --reps timed steps per model after --warmup untimed ones. No optimizer step:
this measures the model, not the optimizer.

MFU = achieved model FLOP/s over this CPU's peak matmul FLOP/s in the same dtype, the peak measured
in the same run as the best of --peak-reps square torch.matmul's of size --peak-n (so it is what
torch's kernels reach here, e.g. with AMX for bf16, not a datasheet number). Model FLOPs per token
follow PaLM (Chowdhery et al. 2022, app. B): 3 x the forward matmuls (the weight matmuls, the
attention scores and values over the full sequence, and the tied LM head), no recompute counted.
Memory: the peak RSS of each step above the RSS before it (activations, logits, gradients), read
from the kernel's high-water mark reset before the step (bench/peak_memory.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without `pip install -e .`
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from peak_memory import gib, peak_bytes, reset_peak, rss_bytes  # noqa: E402

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_peak_flops(dtype_name: str, n: int, reps: int) -> float:
    """Best FLOP/s of an (n x n) @ (n x n) torch.matmul in `dtype_name` over `reps` runs (after one warm-up)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(TORCH_DTYPES[dtype_name])
    b = torch.randn(n, n, generator=gen).to(TORCH_DTYPES[dtype_name])
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def model_flops_per_token(arch, seq: int) -> float:
    """Training (fwd + bwd) FLOPs per token at sequence length `seq` (PaLM's count, see the docstring)."""
    h, q, kv = arch.hidden_size, arch.num_attention_heads * arch.head_dim, arch.num_kv_heads * arch.head_dim
    per_layer = 2 * h * (q + 2 * kv) + 2 * q * h + 3 * 2 * h * arch.ffn_hidden_size  # QKV, out, SwiGLU MLP
    per_layer += 2 * 2 * seq * q  # scores (QK^T) and values (AV), full sequence
    forward = arch.num_layers * per_layer + 2 * h * arch.vocab_size  # + LM head
    return 3 * forward


def smollm2_config(dtype: str) -> dict:
    from megatron_toolrl.models import PRESETS

    return {**PRESETS["smollm2-135m"].hf_config, "dtype": {"fp32": "float32", "bf16": "bfloat16"}[dtype]}


def build_pair(dtype_name: str, hf_attn: str, seed: int):
    """(HF model, megatron model, arch, cfg) with identical weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from megatron_toolrl.bridge import load_hf_into_megatron
    from megatron_toolrl.models import ModelConfig, PrecisionConfig, arch_from_hf, build_model_chunks, torch_dtype

    dtype = torch_dtype(dtype_name)
    hf_cfg = smollm2_config(dtype_name)
    torch.manual_seed(seed)
    hf = LlamaForCausalLM(LlamaConfig(**hf_cfg, attn_implementation=hf_attn)).to(dtype).train()
    arch = arch_from_hf(hf_cfg)
    cfg = ModelConfig(precision=PrecisionConfig(params_dtype=dtype_name))
    (mc,) = build_model_chunks(arch, cfg, perform_initialization=False)
    load_hf_into_megatron([mc], arch, cfg, {k: v.detach() for k, v in hf.state_dict().items()})
    return hf, mc.train(), arch


def run(args: argparse.Namespace, peaks: dict[str, float]) -> list[dict]:
    from megatron_toolrl.bridge import causal_mask
    from megatron_toolrl.parallel import single_process_parallel

    rows = []
    with single_process_parallel(seed=args.seed):
        for dtype_name in args.dtypes:
            hf, mc, arch = build_pair(dtype_name, args.hf_attn, args.seed)
            batch, seq = args.batch, args.seq
            ids = torch.randint(0, arch.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(args.seed))
            position_ids = torch.arange(seq).unsqueeze(0).expand(batch, seq)
            mask = causal_mask(seq)
            next_tokens = torch.roll(ids, -1, dims=1)

            def megatron_step() -> float:
                mc.zero_grad(set_to_none=True)
                per_token = mc(ids, position_ids, mask, labels=next_tokens)  # (B, S)
                loss = per_token[:, :-1].float().mean()  # the last position has no next token (as HF)
                loss.backward()
                return loss.item()

            def hf_step() -> float:
                hf.zero_grad(set_to_none=True)
                loss = hf(input_ids=ids, labels=ids).loss  # HF shifts the labels itself
                loss.backward()
                return loss.item()

            times: dict[str, list[float]] = {"megatron": [], "hf": []}
            step_peak: dict[str, float] = {"megatron": 0.0, "hf": 0.0}
            first_loss: dict[str, float] = {}
            for rep in range(args.warmup + args.reps):
                for name, step in (("megatron", megatron_step), ("hf", hf_step)):
                    before = rss_bytes()
                    reset_peak()
                    start = time.perf_counter()
                    loss = step()
                    elapsed = time.perf_counter() - start
                    step_peak[name] = max(step_peak[name], peak_bytes() - before)
                    first_loss.setdefault(name, loss)
                    if rep >= args.warmup:
                        times[name].append(elapsed)
                    print(f"  {dtype_name} rep {rep} {name:8s} {elapsed:7.2f} s  loss {loss:.4f}", file=sys.stderr)
            flops_per_token = model_flops_per_token(arch, seq)
            for name in ("megatron", "hf"):
                median = statistics.median(times[name])
                tokens_per_s = batch * seq / median
                rows.append({
                    "model": name, "dtype": dtype_name, "batch": batch, "seq": seq,
                    "median_s": median, "tokens_per_s": tokens_per_s, "times_s": times[name],
                    "first_loss": first_loss[name],
                    "hf_attn": args.hf_attn if name == "hf" else "local spec",
                    "model_flops_per_token": flops_per_token,
                    "achieved_flops": tokens_per_s * flops_per_token,
                    "peak_matmul_flops": peaks[dtype_name],
                    "mfu": tokens_per_s * flops_per_token / peaks[dtype_name],
                    "step_peak_above_rss_gib": gib(step_peak[name]),
                })
            del hf, mc
    return rows


def show(rows: list[dict], args: argparse.Namespace, peaks: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    measured = ", ".join(f"{d} {v / 1e12:.2f} TFLOP/s" for d, v in peaks.items())
    table = Table(title=f"fwd+bwd, SmolLM2-135M shape, B={args.batch} S={args.seq}, "
                        f"{torch.get_num_threads()} threads, median of {args.reps}; measured matmul peak: {measured}")
    columns = ("model", "dtype", "attention", "median s/step", "tokens/s", "TFLOP/s", "MFU", "step peak GiB", "first loss")
    for column in columns:
        table.add_column(column, justify="right" if column not in ("model", "dtype", "attention") else "left")
    for row in rows:
        table.add_row(row["model"], row["dtype"], row["hf_attn"], f"{row['median_s']:.2f}",
                      f"{row['tokens_per_s']:.1f}", f"{row['achieved_flops'] / 1e12:.3f}", f"{row['mfu']:.1%}",
                      f"{row['step_peak_above_rss_gib']:.2f}", f"{row['first_loss']:.4f}")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtypes", type=lambda s: s.split(","), default=["bf16", "fp32"],
                        help="comma-separated, of fp32,bf16 (default bf16,fp32)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3, help="timed steps per model (median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--hf-attn", choices=("sdpa", "eager"), default="sdpa")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peak-n", type=int, default=4096, help="size of the square matmul that measures the peak")
    parser.add_argument("--peak-reps", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    for dtype in args.dtypes:
        if dtype not in ("fp32", "bf16"):
            parser.error(f"unknown dtype {dtype!r} (fp32 or bf16)")
    if args.reps < 3:
        parser.error("--reps must be >= 3 for a meaningful median")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    peaks = {d: matmul_peak_flops(d, args.peak_n, args.peak_reps) for d in args.dtypes}
    rows = run(args, peaks)
    show(rows, args, peaks)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), "peak_matmul_flops": peaks,
                                         "peak_matmul_n": args.peak_n, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
