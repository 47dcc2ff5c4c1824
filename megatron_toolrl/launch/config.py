"""The `launch:` section of a recipe: cluster shape and the step's size, as the planner and the
SLURM scripts read them.

It describes where and how big, never what to train: the trainer ignores it. Defaults follow
ToolRL's GRPO recipe (512 prompts, 4 samples each, 2048 prompt / 1024 response tokens; see
notes/ANCHORS.md section 1.3) on H100 nodes of 8 GPUs. `None` means "the planner chooses".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.launch.gpus import GPUS, GpuName
from megatron_toolrl.models.presets import PRESETS

Recompute = Literal["auto", "none", "full"]


@dataclass
class LaunchConfig:
    """Cluster shape, step size and parallel layout for launching a recipe."""

    model: str = "qwen2.5-1.5b"
    """Model preset (megatron_toolrl.models.PRESETS) whose size the layout is planned for."""
    gpu: GpuName = "h100-80gb"
    """GPU type of every node (launch.gpus.GPUS)."""
    gpus_per_node: int = 8
    prompts_per_step: int = 512
    """Prompts per GRPO step (ToolRL: 512)."""
    samples_per_prompt: int = 4
    """Rollouts per prompt (ToolRL: 4; Tool-N1: 5; ToolExpander's hard-sample rule counts 10)."""
    prompt_tokens: int = 2048
    """Longest prompt, tokens (ToolRL: 2048)."""
    response_tokens: int = 1024
    """Longest response, tokens (ToolRL: 1024)."""
    seq_len: int | None = None
    """Training sequence length; None: prompt_tokens + response_tokens."""
    micro_batch: int = 1
    """Sequences per micro batch on each data-parallel rank."""
    rollout_nodes: int | None = None
    """Nodes given to vLLM servers (multi-node jobs); None: the split with the shortest projected step.
    On a single node the planner splits its GPUs instead."""
    tensor_parallel: int | None = None
    """Trainer TP; None: the planner's choice. A forced layout that does not fit is refused."""
    pipeline_parallel: int | None = None
    """Trainer PP; None: the planner's choice."""
    vllm_tensor_parallel: int | None = None
    """TP of each vLLM engine; None: the smallest that leaves half the engine's memory for KV cache."""
    recompute: Recompute = "auto"
    """Full activation recomputation: 'auto' turns it on only where the layout does not fit without."""
    distributed_optimizer: bool = True
    """Shard fp32 master weights and Adam moments over data-parallel ranks (megatron's ZeRO-1)."""
    sequence_parallel: bool = True
    """Megatron sequence parallelism with TP > 1 (TransformerEngine; GPU only)."""
    flash_attention: bool = True
    """Attention that does not keep the s x s scores (TE/cuDNN fused attention on GPU)."""
    hf_dir: str | None = None
    """HF model directory the vLLM servers load; None: the SLURM script's HF_DIR variable."""
    master_port: int = 29500
    """torchrun rendezvous port on the first trainer node."""
    vllm_port: int = 8000
    """Port of the first vLLM server on a node; a node's further engines use the next ports."""
    sync_port: int = 29600
    """Port of the trainer's weight-sync group (trainer rank 0 and every engine worker join it)."""

    def __post_init__(self) -> None:
        if self.model.lower() not in PRESETS:
            raise ConfigError(f"unknown model preset {self.model!r}; known: {', '.join(PRESETS)}", field="model")
        self.model = self.model.lower()
        if self.gpu not in GPUS:
            raise ConfigError(f"unknown GPU {self.gpu!r}; known: {', '.join(GPUS)}", field="gpu")
        for name in ("gpus_per_node", "prompts_per_step", "samples_per_prompt", "prompt_tokens", "response_tokens",
                     "micro_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, name)}", field=name)
        for name in ("seq_len", "tensor_parallel", "pipeline_parallel", "vllm_tensor_parallel"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"must be >= 1 or null, got {value}", field=name)
        if self.rollout_nodes is not None and self.rollout_nodes < 0:
            raise ConfigError(f"must be >= 0 or null, got {self.rollout_nodes}", field="rollout_nodes")
        for name in ("master_port", "vllm_port", "sync_port"):
            if not 1024 <= getattr(self, name) <= 65535:
                raise ConfigError(f"must be a port in 1024-65535, got {getattr(self, name)}", field=name)

    @property
    def train_seq_len(self) -> int:
        return self.seq_len or self.prompt_tokens + self.response_tokens


def load_launch_config(recipe: str | Path | None, overrides: list[str] | None = None) -> LaunchConfig:
    """The recipe's `launch:` section (defaults when it has none), with `key=value` overrides.

    Other sections belong to the trainer and are not read here. Errors name the recipe's file,
    line and the `launch.` field.
    """
    from megatron_toolrl.config import COMMAND_LINE, apply_overrides, from_dict, read_yaml

    data, lines = read_yaml(recipe) if recipe is not None else ({}, {})
    section = data.get("launch") or {}
    if not isinstance(section, dict):
        raise ConfigError("must be a mapping", path=recipe, line=lines.get("launch"), field="launch")
    overrides = list(overrides or [])
    apply_overrides(section, overrides)
    prefix = "launch."
    section_lines = {k[len(prefix):]: v for k, v in lines.items() if k.startswith(prefix)}
    try:
        return from_dict(LaunchConfig, section, source=str(recipe) if recipe is not None else COMMAND_LINE,
                         lines=section_lines, overridden={o.split("=", 1)[0].strip() for o in overrides})
    except ConfigError as err:
        # from_dict names fields relative to the section; the user wrote them under `launch:`.
        raise ConfigError(err.reason, path=err.path, line=err.line,
                          field=prefix + err.field if err.field else "launch") from err
