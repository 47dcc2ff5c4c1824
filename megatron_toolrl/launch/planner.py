"""`megatron-toolrl plan`: the parallel layout, memory per GPU and projected step time of a run.

    megatron-toolrl plan --model qwen2.5-32b --gpu h100-80gb --gpus-per-node 8 --nodes 4 [--json]
        [--recipe RECIPE] [--seq-len N] [--micro-batch N] [--rollout-nodes N] [--tp N --pp N] ...

The job's nodes are split between the trainer (megatron, TP x PP x DP) and the rollout engines
(vLLM servers); on a single node its GPUs are split instead. For each split the planner tries
TP in {1, 2, 4, 8} within a node (TP must divide the attention heads, KV heads and MLP width)
and PP dividing the layer count, and keeps the smallest model-parallel size TP x PP whose memory
per GPU fits (at equal size, the larger TP: no pipeline bubble; without recomputation before
with, when recompute is 'auto'). Among the splits it takes the one with the shortest projected
step. A layout that cannot fit is refused with the numbers (exit code 2).

Memory: see launch.memory (megatron's 6 + 12/DP bytes per parameter with the distributed
optimizer; Korthikanti et al. 2022 activations). Step time: see launch.throughput; every number
it uses is an assumption printed with the plan, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field, replace

from megatron_toolrl.errors import ConfigError, ToolRLError
from megatron_toolrl.launch import memory
from megatron_toolrl.launch.config import LaunchConfig, load_launch_config
from megatron_toolrl.launch.gpus import GpuSpec, get_gpu
from megatron_toolrl.launch.throughput import Assumptions, EnginePlan, StepTime, Workload, engine_plan, project_step
from megatron_toolrl.models.arch import ArchSpec, arch_from_hf
from megatron_toolrl.models.presets import get_preset

GB = 1e9
TP_CHOICES = (1, 2, 4, 8)


class PlanError(ToolRLError):
    """No layout of the requested model fits the requested cluster (or a forced layout does not)."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU of the most loaded trainer GPU."""

    params_per_gpu: int
    weights: float
    grads: float
    optimizer: float
    activations: float
    logits: float
    usable: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.activations + self.logits

    @property
    def fits(self) -> bool:
        return self.total <= self.usable

    def to_gb(self) -> dict[str, float]:
        return {k: round(v / GB, 2) for k, v in (
            ("weights_bf16", self.weights), ("main_grads_fp32", self.grads),
            ("optimizer_fp32_master_m_v", self.optimizer), ("activations", self.activations),
            ("logits", self.logits), ("total", self.total), ("usable", self.usable))}


@dataclass(frozen=True)
class Candidate:
    tp: int
    pp: int
    dp: int
    full_recompute: bool
    memory: MemoryEstimate


@dataclass(frozen=True)
class Split:
    """Where the GPUs go: whole nodes (multi-node) or GPUs of the one node."""

    trainer_nodes: int
    rollout_nodes: int
    trainer_gpus: int
    rollout_gpus: int
    colocated_node: bool
    """Single node: trainer and engines share the node, on disjoint GPUs."""


@dataclass(frozen=True)
class Plan:
    cfg: LaunchConfig
    nodes: int
    arch: ArchSpec
    n_params: int
    gpu: GpuSpec
    split: Split
    layout: Candidate
    engines: EnginePlan
    step: StepTime
    assumptions: Assumptions
    considered: tuple[Candidate, ...] = field(default=())

    def to_dict(self) -> dict:
        c, s, e, arch = self.layout, self.split, self.engines, self.arch
        gpn = self.cfg.gpus_per_node
        if s.colocated_node:
            trainer_where = f"node 0, GPUs 0-{s.trainer_gpus - 1}"
            rollout_where = f"node 0, GPUs {s.trainer_gpus}-{gpn - 1}"
        else:
            trainer_where = _node_range(0, s.trainer_nodes - 1)
            rollout_where = _node_range(s.trainer_nodes, self.nodes - 1)
        preset = get_preset(self.cfg.model)
        return {
            "model": {"name": self.cfg.model, "hf_id": preset.hf_id, "params": self.n_params,
                      "published_params": preset.published_params, "layers": arch.num_layers,
                      "hidden": arch.hidden_size, "heads": arch.num_attention_heads, "kv_heads": arch.num_kv_heads,
                      "ffn": arch.ffn_hidden_size, "vocab": arch.vocab_size},
            "gpu": asdict(self.gpu),
            "inputs": {"nodes": self.nodes, "gpus_per_node": gpn, "seq_len": self.cfg.train_seq_len,
                       "micro_batch": self.cfg.micro_batch, "prompts_per_step": self.cfg.prompts_per_step,
                       "samples_per_prompt": self.cfg.samples_per_prompt, "prompt_tokens": self.cfg.prompt_tokens,
                       "response_tokens": self.cfg.response_tokens},
            "layout": {"trainer_nodes": s.trainer_nodes, "rollout_nodes": s.rollout_nodes,
                       "trainer_gpus": s.trainer_gpus, "rollout_gpus": s.rollout_gpus,
                       "colocated_node": s.colocated_node, "trainer_placement": trainer_where,
                       "rollout_placement": rollout_where,
                       "tp": c.tp, "pp": c.pp, "dp": c.dp, "layers_per_stage": arch.num_layers // c.pp,
                       "recompute": "full" if c.full_recompute else "none",
                       "distributed_optimizer": self.cfg.distributed_optimizer,
                       "sequence_parallel": self.cfg.sequence_parallel and c.tp > 1},
            "memory_gb_per_gpu": c.memory.to_gb(),
            "rollout": {"vllm_tp": e.tensor_parallel, "engines": e.engines,
                        "engines_per_node": (gpn // e.tensor_parallel) if not s.colocated_node else e.engines,
                        "kv_cache_gb_per_engine": round(e.kv_cache_gb, 1), "kv_tokens_per_engine": e.kv_tokens,
                        "max_seqs_per_engine": e.max_seqs},
            "step_time_s": {k: round(v, 2) for k, v in asdict(self.step).items()},
            "assumptions": self.assumptions.to_dict(),
            "considered": [{"tp": k.tp, "pp": k.pp, "dp": k.dp, "recompute": "full" if k.full_recompute else "none",
                            "total_gb": round(k.memory.total / GB, 2), "fits": k.memory.fits} for k in self.considered],
        }


def _node_range(first: int, last: int) -> str:
    return f"node {first}" if first == last else f"nodes {first}-{last}"


# ----------------------------------------------------------------------------------- search


def memory_estimate(arch: ArchSpec, cfg: LaunchConfig, gpu: GpuSpec, tp: int, pp: int, dp: int, full_recompute: bool,
                    a: Assumptions) -> MemoryEstimate:
    n = memory.params_per_gpu(arch, tp, pp)
    weights, grads, optimizer = memory.weight_grad_optimizer_bytes(n, dp, cfg.distributed_optimizer)
    shape = memory.ActivationShape.of(arch, flash_attention=cfg.flash_attention)
    sp = cfg.sequence_parallel and tp > 1
    seq = cfg.train_seq_len
    micro_batches = max(1, cfg.prompts_per_step * cfg.samples_per_prompt // (dp * cfg.micro_batch))
    acts = memory.activation_bytes(shape, arch.num_layers, seq, cfg.micro_batch, tp, pp, sp, full_recompute,
                                   microbatches_in_flight=micro_batches)
    # Conservative: the first stage's activations and the last stage's logits counted together.
    logits = memory.logits_bytes(arch.vocab_size, seq, cfg.micro_batch, tp)
    usable = gpu.memory_gb * GB * (1 - a.trainer_reserved_fraction)
    return MemoryEstimate(n, weights, grads, optimizer, acts, logits, usable)


def _tp_ok(arch: ArchSpec, tp: int) -> bool:
    # megatron's own constraints (models.validate_layout): TP divides heads, KV heads and the MLP.
    return not (arch.num_attention_heads % tp or arch.num_kv_heads % tp or arch.ffn_hidden_size % tp)


def trainer_candidates(arch: ArchSpec, cfg: LaunchConfig, gpu: GpuSpec, trainer_gpus: int,
                       a: Assumptions) -> list[Candidate]:
    """Every layout of `trainer_gpus`, ordered by preference (first fitting one wins)."""
    max_tp = min(cfg.gpus_per_node, trainer_gpus)  # TP stays inside a node (NVLink)
    tps = [cfg.tensor_parallel] if cfg.tensor_parallel else [t for t in TP_CHOICES if t <= max_tp]
    layers = arch.num_layers
    pps = [cfg.pipeline_parallel] if cfg.pipeline_parallel else [p for p in range(1, layers + 1) if layers % p == 0]
    recomputes = {"auto": (False, True), "none": (False,), "full": (True,)}[cfg.recompute]
    out = []
    for tp in tps:
        for pp in pps:
            if trainer_gpus % (tp * pp) or arch.num_layers % pp:
                continue
            dp = trainer_gpus // (tp * pp)
            for rc in recomputes:
                out.append(Candidate(tp, pp, dp, rc, memory_estimate(arch, cfg, gpu, tp, pp, dp, rc, a)))
    out.sort(key=lambda c: (c.tp * c.pp, -c.tp, c.full_recompute))
    return out


def _splits(cfg: LaunchConfig, nodes: int) -> list[Split]:
    gpn = cfg.gpus_per_node
    if nodes == 1:
        if cfg.rollout_nodes not in (None, 0):
            raise PlanError(f"rollout_nodes={cfg.rollout_nodes} on a 1-node job: a single node splits its GPUs instead")
        return [Split(1, 0, gpn - r, r, True) for r in range(1, gpn)]
    if cfg.rollout_nodes is not None:
        if not 1 <= cfg.rollout_nodes < nodes:
            raise PlanError(f"rollout_nodes={cfg.rollout_nodes} must leave 1..{nodes - 1} of {nodes} nodes "
                            "to each side")
        rollouts = [cfg.rollout_nodes]
    else:
        rollouts = list(range(1, nodes))
    return [Split(nodes - r, r, (nodes - r) * gpn, r * gpn, False) for r in rollouts]


def plan(cfg: LaunchConfig, nodes: int, assumptions: Assumptions | None = None) -> Plan:
    """The layout with the shortest projected step among those that fit; PlanError if none does."""
    best, why = _search(cfg, nodes, assumptions or Assumptions())
    if best is None:
        raise PlanError(why + _nodes_needed(cfg, nodes, assumptions or Assumptions()))
    return best


def _search(cfg: LaunchConfig, nodes: int, a: Assumptions) -> tuple[Plan | None, str]:
    """(best plan, "") or (None, why nothing fits)."""
    if nodes < 1:
        raise PlanError(f"nodes must be >= 1, got {nodes}")
    arch = arch_from_hf(get_preset(cfg.model).hf_config)
    gpu = get_gpu(cfg.gpu)
    n_params = memory.count_parameters(arch)
    if cfg.tensor_parallel and not _tp_ok(arch, cfg.tensor_parallel):
        raise PlanError(f"TP={cfg.tensor_parallel} does not divide {cfg.model}'s heads ({arch.num_attention_heads}), "
                        f"KV heads ({arch.num_kv_heads}) and MLP width ({arch.ffn_hidden_size})")
    if cfg.tensor_parallel and cfg.tensor_parallel > cfg.gpus_per_node:
        raise PlanError(f"TP={cfg.tensor_parallel} is larger than a node ({cfg.gpus_per_node} GPUs): "
                        "TP stays within NVLink")
    if cfg.pipeline_parallel and arch.num_layers % cfg.pipeline_parallel:
        raise PlanError(f"PP={cfg.pipeline_parallel} does not divide {cfg.model}'s {arch.num_layers} layers")
    work = Workload(cfg.prompts_per_step, cfg.samples_per_prompt, cfg.prompt_tokens, cfg.response_tokens,
                    cfg.train_seq_len, cfg.micro_batch)
    best: Plan | None = None
    closest: Candidate | None = None
    no_engine: list[Split] = []
    for split in _splits(cfg, nodes):
        engines = engine_plan(arch, n_params, gpu, split.rollout_gpus, min(cfg.gpus_per_node, split.rollout_gpus),
                              work, a, cfg.vllm_tensor_parallel)
        if engines is None:
            no_engine.append(split)
            continue
        candidates = [c for c in trainer_candidates(arch, cfg, gpu, split.trainer_gpus, a) if _tp_ok(arch, c.tp)]
        fitting = [c for c in candidates if c.memory.fits]
        if not fitting:
            for c in candidates:
                if closest is None or c.memory.total < closest.memory.total:
                    closest = c
            continue
        layout = fitting[0]
        step = project_step(arch, n_params, gpu, work, engines, split.rollout_gpus, split.trainer_gpus, layout.pp,
                            layout.dp, layout.full_recompute, split.colocated_node, a)
        candidate = Plan(cfg, nodes, arch, n_params, gpu, split, layout, engines, step, a, tuple(candidates))
        if best is None or step.total_s < best.step.total_s:
            best = candidate
    if best is not None:
        return best, ""
    return None, _refusal(cfg, nodes, gpu, closest, no_engine)


def _refusal(cfg: LaunchConfig, nodes: int, gpu: GpuSpec, closest: Candidate | None, no_engine: list[Split]) -> str:
    where = f"{nodes} node(s) of {cfg.gpus_per_node}x {gpu.name}"
    forced = ""
    if cfg.tensor_parallel or cfg.pipeline_parallel:
        forced = f" with the forced layout TP={cfg.tensor_parallel or 'any'} PP={cfg.pipeline_parallel or 'any'}"
    if closest is not None:
        m = closest.memory
        msg = (f"{cfg.model} does not fit on {where}{forced}: the smallest need is TP={closest.tp} PP={closest.pp} "
               f"DP={closest.dp} recompute={'full' if closest.full_recompute else 'none'} "
               f"at {m.total / GB:.1f} GB per GPU "
               f"(weights {m.weights / GB:.1f}, grads {m.grads / GB:.1f}, optimizer {m.optimizer / GB:.1f}, "
               f"activations {m.activations / GB:.1f}, logits {m.logits / GB:.1f}) > {m.usable / GB:.1f} GB usable")
    elif no_engine:
        msg = (f"{cfg.model} does not fit on {where}{forced}: no vLLM engine of TP<={cfg.gpus_per_node} keeps "
               f"half its memory for KV cache on the rollout GPUs")
    else:
        msg = f"{cfg.model} has no valid layout on {where}{forced} (TP must divide heads/KV heads/MLP, PP the layers)"
    return msg


def _nodes_needed(cfg: LaunchConfig, nodes: int, a: Assumptions, limit: int = 64) -> str:
    """"; it fits on N nodes" for the smallest larger job that fits (same forced TP/PP), or ""."""
    relaxed = replace(cfg, rollout_nodes=None)
    for n in range(nodes + 1, limit + 1):
        try:
            if _search(relaxed, n, a)[0] is not None:
                return f"; it fits on {n} nodes"
        except PlanError:
            continue
    return ""


# ----------------------------------------------------------------------------------- output


def render(p: Plan) -> None:
    """The plan as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    d = p.to_dict()
    console = Console(width=120)
    lay, mem, ro, st = d["layout"], d["memory_gb_per_gpu"], d["rollout"], d["step_time_s"]
    head = Table(title=f"{p.cfg.model} ({p.n_params / 1e9:.2f}B params) on {p.nodes} x {p.cfg.gpus_per_node} "
                       f"{p.gpu.name}", show_header=False)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("trainer", f"{lay['trainer_placement']}: {lay['trainer_gpus']} GPUs, TP={lay['tp']} PP={lay['pp']} "
                            f"DP={lay['dp']} ({lay['layers_per_stage']} layers/stage), recompute={lay['recompute']}, "
                            f"distributed optimizer={'on' if lay['distributed_optimizer'] else 'off'}, "
                            f"sequence parallel={'on' if lay['sequence_parallel'] else 'off'}")
    head.add_row("rollout", f"{lay['rollout_placement']}: {lay['rollout_gpus']} GPUs, {ro['engines']} vLLM engines of "
                            f"TP={ro['vllm_tp']} ({ro['engines_per_node']}/node), KV cache {ro['kv_cache_gb_per_engine']} GB"
                            f" = {ro['kv_tokens_per_engine']:,} tokens/engine, <= {ro['max_seqs_per_engine']} seqs in flight")
    head.add_row("step", f"seq {p.cfg.train_seq_len}, micro batch {p.cfg.micro_batch}, {p.cfg.prompts_per_step} prompts x "
                         f"{p.cfg.samples_per_prompt} samples, {p.cfg.prompt_tokens}+{p.cfg.response_tokens} tokens")
    console.print(head)
    mt = Table(title="memory per trainer GPU (GB)")
    for col in ("weights bf16", "grads fp32", "optimizer fp32 (master, m, v)", "activations", "logits", "total", "usable"):
        mt.add_column(col, justify="right")
    mt.add_row(*(f"{mem[k]:.2f}" for k in ("weights_bf16", "main_grads_fp32", "optimizer_fp32_master_m_v",
                                           "activations", "logits", "total", "usable")))
    console.print(mt)
    tt = Table(title="projected step time (s), from the assumptions below")
    for col in ("generation", "logprobs", "training", "weight sync", "total", "decode tok/s/GPU", "train tok/s/GPU"):
        tt.add_column(col, justify="right")
    tt.add_row(*(f"{st[k]:.1f}" for k in ("generation_s", "logprob_s", "training_s", "weight_sync_s", "total_s",
                                          "decode_tokens_per_s_per_gpu", "train_tokens_per_s_per_gpu")))
    console.print(tt)
    ct = Table(title=f"layouts considered for {lay['trainer_gpus']} trainer GPUs, in order of preference")
    for col in ("TP", "PP", "DP", "recompute", "GB/GPU", "fits", ""):
        ct.add_column(col, justify="right")
    chosen = next(i for i, c in enumerate(d["considered"]) if c["fits"])
    for i, c in enumerate(d["considered"][: chosen + 3]):
        ct.add_row(str(c["tp"]), str(c["pp"]), str(c["dp"]), c["recompute"], f"{c['total_gb']:.1f}",
                   "yes" if c["fits"] else "no", "chosen" if i == chosen else "")
    console.print(ct)
    console.print("assumptions (not measurements): " + ", ".join(f"{k}={v}" for k, v in d["assumptions"].items()))
    console.print(f"GPU peak: {p.gpu.bf16_tflops:.0f} TFLOPS bf16 dense, {p.gpu.hbm_tb_s} TB/s, "
                  f"{p.gpu.memory_gb:.0f} GB")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="megatron-toolrl plan", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, required=True, help="nodes of the job (trainer + rollout)")
    ap.add_argument("--recipe", help="YAML recipe whose `launch:` section gives the defaults")
    flags = {  # flag -> LaunchConfig field
        "--model": "model", "--gpu": "gpu", "--gpus-per-node": "gpus_per_node", "--seq-len": "seq_len",
        "--micro-batch": "micro_batch", "--prompts-per-step": "prompts_per_step",
        "--samples-per-prompt": "samples_per_prompt", "--prompt-tokens": "prompt_tokens",
        "--response-tokens": "response_tokens", "--rollout-nodes": "rollout_nodes", "--tp": "tensor_parallel",
        "--pp": "pipeline_parallel", "--vllm-tp": "vllm_tensor_parallel", "--recompute": "recompute",
    }
    for flag, name in flags.items():
        ap.add_argument(flag, dest=name, default=None, help=f"launch.{name} (default: recipe, else LaunchConfig)")
    ap.add_argument("--no-distributed-optimizer", dest="distributed_optimizer", action="store_const", const="false")
    ap.add_argument("--no-sequence-parallel", dest="sequence_parallel", action="store_const", const="false")
    ap.add_argument("--json", action="store_true", help="print the plan as JSON (machine-readable) instead of tables")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    fields = ("model", "gpu", "gpus_per_node", "seq_len", "micro_batch", "prompts_per_step", "samples_per_prompt",
              "prompt_tokens", "response_tokens", "rollout_nodes", "tensor_parallel", "pipeline_parallel",
              "vllm_tensor_parallel", "recompute", "distributed_optimizer", "sequence_parallel")
    overrides = [f"{name}={getattr(args, name)}" for name in fields if getattr(args, name) is not None]
    try:
        cfg = load_launch_config(args.recipe, overrides)
        result = plan(cfg, args.nodes)
    except (PlanError, ConfigError) as err:
        print(f"megatron-toolrl plan: refused: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        render(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
