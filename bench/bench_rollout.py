"""Rollout throughput and weight-sync cost: our vLLM engine vs HF generate, sync vs restart.

    .venv/bin/python bench/bench_rollout.py [--mode inproc|server] [--transport shm|dist]
        [--dtype bfloat16] [--prompts 8] [--n 8] [--max-tokens 64] [--repeats 3] [--json out.json]

Rows:
- rollout tokens/s: the same chat prompts, n sampled completions each (temperature 1, logprobs
  on), through `RolloutEngine.generate` and through HF `generate` (num_return_sequences=n,
  per-token scores kept, as a trainer needs them). Runs alternate engine-HF-engine-HF in one
  process so background load on a shared machine hits both alike; tokens = generated tokens up
  to and including EOS. The table gives the median of --repeats.
- weight sync: a full push of every tensor (HF names, 64 MiB buckets) through the engine's
  transport, prefix caches reset, no probe check; vs restarting the engine from the same weights
  on disk (close + start for in-process; kill + start + /health for a server), which is what a
  trainer without in-place sync would do every step.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from megatron_toolrl.rollout.config import RolloutConfig  # noqa: E402
from megatron_toolrl.rollout.types import SamplingSettings  # noqa: E402

QUESTIONS = [
    "What is the capital of Japan?",
    "Name three primary colors.",
    "Write a haiku about the sea.",
    "What is 17 times 3?",
    "Give me a tip for learning Python.",
    "Why is the sky blue?",
    "Translate 'good morning' into French.",
    "List two uses of a paperclip.",
    "What does a compiler do?",
    "Suggest a name for a cat.",
    "How many legs does a spider have?",
    "Explain recursion in one sentence.",
]

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def chat(q: str) -> str:
    return f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"


def start_engine(cfg: RolloutConfig):
    if cfg.mode == "inproc":
        from megatron_toolrl.rollout.inproc import InprocEngine

        return InprocEngine(cfg)
    from megatron_toolrl.rollout.server import ServerEngine

    return ServerEngine(cfg)


def engine_rollout(engine, prompts: list[str], n: int, max_tokens: int, seed: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    out = engine.generate(prompts, SamplingSettings(n=n, temperature=1.0, max_tokens=max_tokens, seed=seed))
    seconds = time.perf_counter() - t0
    return sum(len(c.token_ids) for group in out for c in group), seconds


@torch.no_grad()
def hf_rollout(model, tok, prompts: list[str], n: int, max_tokens: int, seed: int) -> tuple[int, float]:
    torch.manual_seed(seed)
    tok.padding_side = "left"
    batch = tok(prompts, return_tensors="pt", padding=True)
    t0 = time.perf_counter()
    out = model.generate(
        **batch, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=max_tokens,
        num_return_sequences=n, output_scores=True, return_dict_in_generate=True, pad_token_id=tok.pad_token_id,
    )
    # Per-token logprobs of the sampled tokens, as a trainer would keep them.
    model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
    seconds = time.perf_counter() - t0
    new = out.sequences[:, batch["input_ids"].shape[1] :]
    tokens = 0
    for row in new.tolist():
        length = len(row)
        if tok.eos_token_id in row:
            length = row.index(tok.eos_token_id) + 1
        tokens += length
    return tokens, seconds


def full_push_seconds(engine, weights: dict[str, torch.Tensor], bucket_bytes: int) -> float:
    buckets, current, size = [], [], 0
    for name, tensor in weights.items():
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > bucket_bytes:
            buckets.append(current)
            current, size = [], 0
        current.append((name, tensor))
        size += nbytes
    buckets.append(current)
    return engine.update_weights(iter(buckets)).seconds


def restart_seconds(engine, cfg: RolloutConfig):
    """(seconds, engine): restart the engine from the weights on disk."""
    t0 = time.perf_counter()
    if cfg.mode == "inproc":
        engine.close()
        engine = start_engine(cfg)
    else:
        for server in engine.servers:
            server.stop()
            server.start()
    return time.perf_counter() - t0, engine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hf-dir", default=str(REPO / "artifacts" / "smollm2-135m-instruct"))
    p.add_argument("--mode", choices=("inproc", "server"), default="inproc")
    p.add_argument("--transport", choices=("shm", "dist"), default="shm")
    p.add_argument("--dtype", choices=tuple(TORCH_DTYPES), default="bfloat16")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if not 1 <= args.prompts <= len(QUESTIONS):
        p.error(f"--prompts must be in 1..{len(QUESTIONS)}")

    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = RolloutConfig(
        hf_dir=args.hf_dir, mode=args.mode, dtype=args.dtype, max_model_len=1024, kv_cache_gib=1,
        sync_transport=args.transport,
    )
    prompts = [chat(q) for q in QUESTIONS[: args.prompts]]
    t0 = time.perf_counter()
    engine = start_engine(cfg)
    first_start = time.perf_counter() - t0
    try:
        tok = AutoTokenizer.from_pretrained(args.hf_dir)
        hf = AutoModelForCausalLM.from_pretrained(args.hf_dir, dtype=TORCH_DTYPES[args.dtype]).eval()
        weights = {k: v.detach().clone() for k, v in hf.state_dict().items() if not (hf.config.tie_word_embeddings and k == "lm_head.weight")}
        engine_rollout(engine, prompts[:1], 2, 8, seed=0)  # warm-up: first-call costs are not throughput
        runs: dict[str, list[float]] = {"engine_tok_s": [], "hf_tok_s": [], "sync_s": [], "restart_s": []}
        tokens: dict[str, list[int]] = {"engine": [], "hf": []}
        for r in range(args.repeats):
            n_tok, sec = engine_rollout(engine, prompts, args.n, args.max_tokens, seed=100 + r)
            runs["engine_tok_s"].append(n_tok / sec)
            tokens["engine"].append(n_tok)
            n_tok, sec = hf_rollout(hf, tok, prompts, args.n, args.max_tokens, seed=100 + r)
            runs["hf_tok_s"].append(n_tok / sec)
            tokens["hf"].append(n_tok)
        for _ in range(args.repeats):
            runs["sync_s"].append(full_push_seconds(engine, weights, 64 * 1024**2))
        for _ in range(args.repeats):
            seconds, engine = restart_seconds(engine, cfg)
            runs["restart_s"].append(seconds)
    finally:
        engine.close()

    med = {k: statistics.median(v) for k, v in runs.items()}
    engine_name = f"vLLM {args.mode}" + (f" ({args.transport})" if args.mode == "server" else "")
    rows = [
        (f"rollout tokens/s, {engine_name}", med["engine_tok_s"], runs["engine_tok_s"]),
        ("rollout tokens/s, HF generate", med["hf_tok_s"], runs["hf_tok_s"]),
        ("  speed-up", med["engine_tok_s"] / med["hf_tok_s"], []),
        (f"full weight sync s, {'inproc' if args.mode == 'inproc' else args.transport}", med["sync_s"], runs["sync_s"]),
        ("engine restart s (from disk)", med["restart_s"], runs["restart_s"]),
        ("  restart / sync", med["restart_s"] / med["sync_s"], []),
    ]
    print(f"\nSmolLM2-135M-Instruct, {args.dtype}, {args.prompts} prompts x n={args.n} x <= {args.max_tokens} tokens, "
          f"median of {args.repeats}; {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; "
          f"first engine start {first_start:.1f} s")
    width = max(len(r[0]) for r in rows)
    print(f"{'':<{width}}  {'median':>10}  runs")
    for name, value, values in rows:
        print(f"{name:<{width}}  {value:>10.2f}  {' '.join(f'{v:.2f}' for v in values)}")
    if args.json is not None:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs, "median": med,
                                         "tokens": tokens, "first_start_s": first_start}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
