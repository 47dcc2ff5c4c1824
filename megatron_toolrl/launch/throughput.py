"""Projected GRPO step time from stated throughput assumptions (not measurements).

One on-policy step runs one phase after the other: generation on the rollout engines, the
old-policy logprob forward and the training forward/backward on the trainer, and the weight
push into the engines. Each phase's time is work / (hardware peak x an assumed efficiency); the
efficiencies are the fields of `Assumptions`, printed with every plan so that a reader can
replace them with measured ones.

Training FLOPs per token: 2 per parameter for a forward (the matmuls; 6 for forward + backward,
Kaplan et al. 2020) plus causal attention, 2*L*q*s per forward token (QK^T and AV over an
average context of s/2, PaLM appendix B halved for the causal mask). Full recomputation adds a
forward, the old-policy logprobs one more. The pipeline bubble stretches the trainer's time by
(1 + (pp - 1) / m) with m micro batches per data-parallel rank (1F1B, Narayanan et al. 2021).

Decode is memory-bound: every decode step of an engine reads all of its weights and the KV
cache of the sequences in flight, at the GPU's bandwidth times an efficiency, and makes one
token per sequence (capped by compute at a decode MFU). Prefill is compute-bound. Every response
is assumed to run to the maximum length: an upper bound, as GRPO waits for the longest sample.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from megatron_toolrl.launch.gpus import GpuSpec
from megatron_toolrl.launch.memory import BF16
from megatron_toolrl.models.arch import ArchSpec


@dataclass(frozen=True)
class Assumptions:
    """Efficiencies and limits the projection assumes. Not measured on this project's hardware."""

    train_mfu: float = 0.35
    """Model FLOPs utilisation of megatron training (dense bf16). Megatron-LM reports 0.35-0.47 at
    GPT scale on H100; 0.35 is the conservative end for 1.5B-32B models with short sequences."""
    prefill_mfu: float = 0.40
    """Utilisation of vLLM prefill (compute-bound)."""
    decode_mfu: float = 0.30
    """Compute cap of decode at large batch."""
    decode_bandwidth_efficiency: float = 0.60
    """Fraction of HBM bandwidth a decode step achieves reading weights and KV cache."""
    vllm_gpu_memory_utilization: float = 0.90
    """vLLM's default gpu_memory_utilization: the share of a GPU the engine may use."""
    vllm_workspace_fraction: float = 0.05
    """Of the engine's GPU memory, the part kept for activations and CUDA graphs, not KV."""
    vllm_max_num_seqs: int = 256
    """vLLM's default cap on sequences in flight per engine."""
    trainer_reserved_fraction: float = 0.10
    """GPU memory the trainer cannot use: CUDA context, NCCL buffers, allocator fragmentation."""
    weight_sync_gb_s: float = 25.0
    """Effective bandwidth of the NCCL broadcast trainer -> engines across nodes, GB/s (400 Gb/s IB ~ 50 GB/s peak)."""
    weight_sync_gb_s_same_node: float = 100.0
    """The same within one node (NVLink)."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Workload:
    """One GRPO step's amount of work."""

    prompts_per_step: int
    samples_per_prompt: int
    prompt_tokens: int
    response_tokens: int
    seq_len: int
    """Training sequence length (prompt + response, padded)."""
    micro_batch: int

    @property
    def sequences(self) -> int:
        return self.prompts_per_step * self.samples_per_prompt

    @property
    def train_tokens(self) -> int:
        return self.sequences * self.seq_len


@dataclass(frozen=True)
class EnginePlan:
    """vLLM engines of the rollout GPUs."""

    tensor_parallel: int
    engines: int
    kv_cache_gb: float
    """KV cache per engine (all its GPUs), GB."""
    kv_tokens: int
    """Tokens of KV cache per engine."""
    max_seqs: int
    """Sequences in flight per engine: min(vLLM's cap, KV cache / (prompt + response))."""


def kv_bytes_per_token(arch: ArchSpec) -> int:
    """K and V of every layer, bf16."""
    return 2 * arch.num_layers * arch.num_kv_heads * arch.head_dim * BF16


def engine_plan(arch: ArchSpec, n_params: int, gpu: GpuSpec, rollout_gpus: int, max_tp: int, work: Workload,
                a: Assumptions, tensor_parallel: int | None = None) -> EnginePlan | None:
    """The smallest vLLM TP whose engine keeps at least half of its memory for KV cache, or None.

    vLLM splits attention heads across TP ranks, so TP must divide the head count.
    """
    per_gpu = gpu.memory_gb * 1e9 * a.vllm_gpu_memory_utilization * (1 - a.vllm_workspace_fraction)
    candidates = [tensor_parallel] if tensor_parallel else [1, 2, 4, 8]
    for tp in candidates:
        if tp > max_tp or tp > rollout_gpus or arch.num_attention_heads % tp:
            continue
        weights = BF16 * n_params
        kv = per_gpu * tp - weights
        if kv < (0.5 * per_gpu * tp if tensor_parallel is None else 0):
            continue
        kv_tokens = int(kv // kv_bytes_per_token(arch))
        max_seqs = min(a.vllm_max_num_seqs, kv_tokens // (work.prompt_tokens + work.response_tokens))
        if max_seqs < 1:
            continue
        return EnginePlan(tp, rollout_gpus // tp, kv / 1e9, kv_tokens, max_seqs)
    return None


@dataclass(frozen=True)
class StepTime:
    generation_s: float
    prefill_s: float
    decode_s: float
    decode_tokens_per_s_per_gpu: float
    logprob_s: float
    training_s: float
    weight_sync_s: float
    total_s: float
    train_tokens_per_s_per_gpu: float
    """Trained tokens per trainer GPU per second of the trainer phases."""


def forward_flops_per_token(arch: ArchSpec, n_params: int, seq_len: int) -> float:
    q = arch.num_attention_heads * arch.head_dim
    return 2.0 * n_params + 2.0 * arch.num_layers * q * seq_len


def project_step(arch: ArchSpec, n_params: int, gpu: GpuSpec, work: Workload, engines: EnginePlan, rollout_gpus: int,
                 trainer_gpus: int, pp: int, dp: int, full_recompute: bool, same_node: bool,
                 a: Assumptions) -> StepTime:
    peak = gpu.bf16_tflops * 1e12
    # Generation.
    prefill_flops = work.sequences * work.prompt_tokens * forward_flops_per_token(arch, n_params, work.prompt_tokens)
    prefill_s = prefill_flops / (rollout_gpus * peak * a.prefill_mfu)
    per_engine = math.ceil(work.sequences / engines.engines)
    in_flight = max(1, min(engines.max_seqs, per_engine))
    waves = math.ceil(per_engine / in_flight)
    avg_context = work.prompt_tokens + work.response_tokens / 2
    bytes_per_decode_step = BF16 * n_params + in_flight * avg_context * kv_bytes_per_token(arch)
    bandwidth = engines.tensor_parallel * gpu.hbm_tb_s * 1e12 * a.decode_bandwidth_efficiency
    memory_step_s = bytes_per_decode_step / bandwidth
    compute_step_s = in_flight * forward_flops_per_token(arch, n_params, int(avg_context)) / (
        engines.tensor_parallel * peak * a.decode_mfu)
    step_s = max(memory_step_s, compute_step_s)
    decode_s = waves * work.response_tokens * step_s
    decoded = work.sequences * work.response_tokens
    # Trainer: old-policy logprobs (one forward), then forward + backward (+ a forward when recomputing).
    fwd = forward_flops_per_token(arch, n_params, work.seq_len) * work.train_tokens
    micro_batches = max(1, work.sequences // (dp * work.micro_batch))
    bubble = 1 + (pp - 1) / micro_batches
    rate = trainer_gpus * peak * a.train_mfu
    logprob_s = fwd * bubble / rate
    training_s = fwd * (4 if full_recompute else 3) * bubble / rate
    sync_s = BF16 * n_params / 1e9 / (a.weight_sync_gb_s_same_node if same_node else a.weight_sync_gb_s)
    generation_s = prefill_s + decode_s
    total = generation_s + logprob_s + training_s + sync_s
    return StepTime(
        generation_s=generation_s, prefill_s=prefill_s, decode_s=decode_s,
        decode_tokens_per_s_per_gpu=decoded / decode_s / rollout_gpus,
        logprob_s=logprob_s, training_s=training_s, weight_sync_s=sync_s, total_s=total,
        train_tokens_per_s_per_gpu=work.train_tokens / (logprob_s + training_s) / trainer_gpus,
    )
