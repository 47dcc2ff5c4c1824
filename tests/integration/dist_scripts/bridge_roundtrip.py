"""Rank script: HF -> megatron (this layout) -> HF round trip and logits, for every tiny case.

    torchrun --nproc-per-node=2 bridge_roundtrip.py --root DIR --tp 2 --pp 1

DIR holds one HF model directory per case (bridge_tiny_models.write_cases) and, in each,
`hf_logits.pt` = {"input_ids", "logits"} computed by the test with HF transformers. Every rank
reports one result per case; rank 0 prints them all as `RESULT {json}` lines (one writer, so
lines never interleave) and the test asserts on them.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--tp", type=int, default=1)
    parser.add_argument("--pp", type=int, default=1)
    parser.add_argument("--vpp-dir", type=Path, default=None,
                        help="also round-trip this HF model with 2 virtual pipeline chunks per stage")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import torch.distributed as dist

    from megatron_toolrl.bridge import export_hf_tensors, load_hf_into_megatron, megatron_logits, read_hf_state
    from megatron_toolrl.models import ModelConfig, ParallelConfig, arch_from_hf, build_model_chunks
    from megatron_toolrl.parallel import destroy_parallel, init_parallel
    from megatron_toolrl.platform import cuda_to_cpu

    parallel = ParallelConfig(tensor_parallel=args.tp, pipeline_parallel=args.pp)
    init_parallel(parallel)
    rank = dist.get_rank()
    cases = json.loads((args.root / "cases.json").read_text())
    bucket_bytes = 16 * 1024  # small, so that the tiny models stream in many buckets
    for name, hf_dir in cases.items():
        hf_dir = Path(hf_dir)
        arch = arch_from_hf(hf_dir)
        cfg = ModelConfig(parallel=parallel)
        # cuda_to_cpu: GPTModel's tied-embedding set-up under PP>1 calls Tensor.cuda() (megatron-core 0.16.1).
        with cuda_to_cpu():
            chunks = build_model_chunks(arch, cfg, perform_initialization=False)
        load_hf_into_megatron(chunks, arch, cfg, hf_dir)

        original = dict(read_hf_state(hf_dir))
        exported: dict[str, torch.Tensor] = {}
        order: list[str] = []
        buckets_ok = True
        for bucket in export_hf_tensors(chunks, arch, cfg, bucket_bytes=bucket_bytes):
            size = sum(t.numel() * t.element_size() for _, t in bucket)
            buckets_ok &= size <= bucket_bytes or len(bucket) == 1
            for tensor_name, tensor in bucket:
                exported[tensor_name] = tensor.clone()
                order.append(tensor_name)
        mismatched = sorted(n for n in original if n not in exported or not torch.equal(exported[n], original[n]))
        extra = sorted(set(exported) - set(original))

        reference = torch.load(hf_dir / "hf_logits.pt")
        logits = megatron_logits(chunks, reference["input_ids"], arch.vocab_size)
        diff = (logits - reference["logits"]).abs()
        result = {
            "rank": rank, "case": name, "tp": args.tp, "pp": args.pp,
            "mismatched": mismatched, "extra": extra, "duplicates": len(order) - len(set(order)),
            "buckets_ok": buckets_ok, "max_abs_diff": diff.max().item(),
        }
        gathered: list[dict | None] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, result)
        if rank == 0:
            for line in gathered:
                print("RESULT " + json.dumps(line), flush=True)
        del chunks

    if args.vpp_dir is not None:
        # Interleaved pipeline: each rank holds 2 chunks of non-consecutive layers (rank 0: layers
        # 0 and 2, rank 1: layers 1 and 3 of 4), whose global indices come from megatron.
        vpp = ParallelConfig(tensor_parallel=args.tp, pipeline_parallel=args.pp, virtual_pipeline_parallel=2)
        init_parallel(vpp)
        arch, cfg = arch_from_hf(args.vpp_dir), ModelConfig(parallel=vpp)
        with cuda_to_cpu():
            chunks = build_model_chunks(arch, cfg, perform_initialization=False)
        load_hf_into_megatron(chunks, arch, cfg, args.vpp_dir)
        original = dict(read_hf_state(args.vpp_dir))
        exported = {n: t.clone() for bucket in export_hf_tensors(chunks, arch, cfg) for n, t in bucket}
        result = {
            "rank": rank, "case": "vpp", "chunks": len(chunks),
            "global_layers": [[layer.layer_number - 1 for layer in c.decoder.layers] for c in chunks],
            "mismatched": sorted(n for n in original if n not in exported or not torch.equal(exported[n], original[n])),
            "extra": sorted(set(exported) - set(original)),
        }
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, result)
        if rank == 0:
            for line in gathered:
                print("RESULT " + json.dumps(line), flush=True)
    destroy_parallel()


if __name__ == "__main__":
    main()
