"""`megatron-toolrl sync-check`: megatron weights -> vLLM engine, checked by logprobs.

    megatron-toolrl sync-check --hf-dir HF [--mode inproc|server] [--transport shm|dist]
    torchrun --nproc-per-node=2 -m megatron_toolrl.cli sync-check --hf-dir HF --tp 2 --mode server

Every rank loads the HF weights into its megatron shards (bridge) and perturbs them, so the
engine (started from the HF directory) holds different weights until the push. Rank 0 starts
the engine; all ranks compute the megatron logprobs of a fixed probe batch (the reference) and
stream the export (`bridge.export_hf_tensors`, a collective on every rank) while rank 0 pushes
it into the engine and checks the engine's logprobs of the probe against the reference. The
last line printed is JSON: max_abs_diff, mean_abs_diff, sync_seconds, ...; exit code 1 when the
engine disagrees beyond tolerance.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from megatron_toolrl.rollout.config import RolloutConfig
from megatron_toolrl.rollout.types import ProbeBatch, RolloutEngine, SyncStats, drain
from megatron_toolrl.rollout.verify import SyncMismatchError, compare_logprobs

log = logging.getLogger(__name__)

PROBE_TEXTS = (
    "<|im_start|>user\nWhat is the weather in Paris today?<|im_end|>\n<|im_start|>assistant\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>',
    "<|im_start|>user\nName three primary colors.<|im_end|>\n<|im_start|>assistant\nRed, blue and yellow.<|im_end|>",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.",
)
"""Fixed probe texts (a tool call, a chat turn, plain prose). Token ids come from the model's tokenizer."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="megatron-toolrl sync-check", description=__doc__.split("\n\n")[0])
    p.add_argument("--hf-dir", required=True, help="HF model directory (megatron and the engine both load it)")
    p.add_argument("--tp", type=int, default=1, help="megatron tensor parallelism (= world size; run under torchrun for > 1)")
    p.add_argument("--mode", choices=("inproc", "server"), default="inproc", help="in-process engine or vLLM server(s)")
    p.add_argument("--transport", choices=("shm", "dist"), default="shm", help="server mode: weight transport")
    p.add_argument("--num-servers", type=int, default=1, help="server mode: number of vLLM servers")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="engine dtype (megatron runs fp32)")
    p.add_argument("--noise", type=float, default=0.02, help="perturbation: Gaussian noise of this times each tensor's std")
    p.add_argument("--seed", type=int, default=0, help="perturbation seed")
    p.add_argument("--bucket-mib", type=int, default=64, help="export bucket size, MiB")
    p.add_argument("--max-model-len", type=int, default=1024)
    p.add_argument("--kv-cache-gib", type=int, default=1)
    p.add_argument("--tolerance-mean", type=float, default=None, help="default: by dtype (fp32 1e-3)")
    p.add_argument("--tolerance-max", type=float, default=None, help="default: by dtype (fp32 5e-2)")
    return p


@torch.no_grad()
def perturb_(model_chunks: Sequence[torch.nn.Module], noise: float, seed: int) -> None:
    """Add noise * std * N(0, 1) to every parameter in place.

    The generator is seeded by (seed, parameter name) only, so a parameter replicated across TP
    ranks (a norm weight) gets the same noise on each of them, as it must.
    """
    for chunk in model_chunks:
        for name, param in chunk.named_parameters():
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            scale = noise * param.detach().float().std().clamp_min(1e-3)
            param.add_((scale * torch.randn(param.shape, generator=g)).to(param.dtype))


def probe_token_ids(hf_dir: str) -> list[list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(hf_dir)
    return [tok(t, add_special_tokens=False)["input_ids"] for t in PROBE_TEXTS]


@torch.no_grad()
def megatron_prompt_logprobs(model_chunks, token_ids: list[list[int]], vocab_size: int) -> list[list[float]]:
    """The trainer's reference: log p(t[j+1] | t[:j+1]) from megatron logits (fp32), per sequence."""
    from megatron_toolrl.bridge import megatron_logits

    rows = []
    for ids in token_ids:
        x = torch.tensor([ids], dtype=torch.long)
        logits = megatron_logits(model_chunks, x, vocab_size)[0, :-1]  # (L-1, V)
        rows.append(torch.log_softmax(logits, -1).gather(-1, x[0, 1:, None])[:, 0].tolist())
    return rows


def _start_engine(cfg: RolloutConfig) -> RolloutEngine:
    if cfg.mode == "inproc":
        from megatron_toolrl.rollout.inproc import InprocEngine

        return InprocEngine(cfg)
    from megatron_toolrl.rollout.server import ServerEngine

    return ServerEngine(cfg)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything but printing; returns the result on rank 0, {} on the other ranks."""
    import torch.distributed as dist

    from megatron_toolrl.bridge import export_hf_tensors, load_hf_into_megatron
    from megatron_toolrl.errors import ConfigError
    from megatron_toolrl.models import ModelConfig, ParallelConfig, arch_from_hf, build_model_chunks
    from megatron_toolrl.parallel import init_parallel

    parallel = ParallelConfig(tensor_parallel=args.tp)
    init_parallel(parallel, seed=args.seed)
    rank, world = dist.get_rank(), dist.get_world_size()
    if world != args.tp:
        raise ConfigError(f"world size {world} must equal --tp {args.tp} (run under torchrun --nproc-per-node={args.tp})", field="tp")
    if args.mode == "inproc" and world > 1:
        # vLLM would adopt this process's world of `world` ranks as its own and refuse TP=1.
        raise ConfigError("the in-process engine needs a single-process trainer; use --mode server with --tp > 1", field="mode")

    cfg = RolloutConfig(
        hf_dir=args.hf_dir, mode=args.mode, dtype=args.dtype, max_model_len=args.max_model_len,
        kv_cache_gib=args.kv_cache_gib, num_servers=args.num_servers, sync_transport=args.transport,
        sync_tolerance_mean=args.tolerance_mean, sync_tolerance_max=args.tolerance_max,
    )
    engine = _start_engine(cfg) if rank == 0 else None
    try:
        arch, model_cfg = arch_from_hf(args.hf_dir), ModelConfig(parallel=parallel)
        chunks = build_model_chunks(arch, model_cfg, perform_initialization=False)
        load_hf_into_megatron(chunks, arch, model_cfg, args.hf_dir)
        perturb_(chunks, args.noise, args.seed)
        seqs = probe_token_ids(args.hf_dir)
        probe = ProbeBatch(seqs, megatron_prompt_logprobs(chunks, seqs, arch.vocab_size))
        before = engine.prompt_logprobs(seqs) if engine is not None else None

        buckets: Iterator = export_hf_tensors(chunks, arch, model_cfg, bucket_bytes=args.bucket_mib * 1024**2)
        if engine is None:
            drain(buckets)  # every rank takes part in the export's collectives
            return {}
        stats: SyncStats | None = None
        try:
            stats = engine.update_weights(buckets, probe)
            agreements = stats.agreements
        except SyncMismatchError as err:
            log.error("%s", err)
            agreements = (err.agreement,)
        finally:
            drain(buckets)  # finish the export if the push stopped early, so no rank hangs
        unpushed = compare_logprobs("before push", before, probe.reference_logprobs)
        result = {
            "ok": stats is not None,
            "max_abs_diff": max(a.max_abs_diff for a in agreements),
            "mean_abs_diff": max(a.mean_abs_diff for a in agreements),
            "sync_seconds": stats.seconds if stats is not None else None,
            "verify_seconds": stats.verify_seconds if stats is not None else None,
            "num_tensors": stats.num_tensors if stats is not None else None,
            "num_bytes": stats.num_bytes if stats is not None else None,
            # How far the engine was from the trainer before the push: shows the check can fail.
            "before_push_mean_abs_diff": unpushed.mean_abs_diff,
            "tolerance_mean": cfg.tolerance[0], "tolerance_max": cfg.tolerance[1],
            "mode": args.mode, "transport": "inproc" if args.mode == "inproc" else args.transport,
            "tp": args.tp, "dtype": args.dtype, "probe_tokens": sum(len(s) - 1 for s in seqs),
        }
        return result
    finally:
        if engine is not None:
            engine.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import torch.distributed as dist

    from megatron_toolrl.parallel import destroy_parallel

    started = time.perf_counter()
    try:
        result = run(args)
        ok = bool(result.get("ok", True))
        if dist.is_initialized() and dist.get_world_size() > 1:
            flags = [ok]
            dist.broadcast_object_list(flags, src=0)
            ok = bool(flags[0])
    finally:
        destroy_parallel()
    if result:
        result["total_seconds"] = time.perf_counter() - started
        print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
