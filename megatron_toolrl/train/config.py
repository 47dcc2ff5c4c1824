"""The training run's config: one dataclass per subsystem, loaded from a YAML recipe + overrides.

`megatron-toolrl train examples/quickstart_cpu.yaml train.steps=6 seed=1` builds a `TrainConfig`
with `megatron_toolrl.config.load_config`, which rejects unknown keys and wrong types with the
file, line and field. `mode` names the paper whose recipe the run follows; it only checks that
the recipe turns on what that paper needs (it never silently changes a value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from megatron_toolrl.data.task import Category
from megatron_toolrl.errors import ConfigError
from megatron_toolrl.grpo.advantages import AdvantageMode
from megatron_toolrl.grpo.hard_pool import HardSamplingConfig
from megatron_toolrl.grpo.loss import PolicyLossConfig
from megatron_toolrl.launch.config import LaunchConfig
from megatron_toolrl.models.config import ModelConfig
from megatron_toolrl.policy.optimizer import OptimizerSettings
from megatron_toolrl.rewards.config import RewardConfig
from megatron_toolrl.rollout.config import EngineDType, EngineMode, SyncTransportName
from megatron_toolrl.toolcall.types import OutputFormat

Mode = Literal["grpo", "toolexpander", "tool_zero"]


@dataclass
class DataConfig:
    """Where training and held-out tasks come from."""

    source: Literal["synthetic", "jsonl", "toolace", "xlam", "hammer"] = "synthetic"
    """'synthetic': the seeded generator (data.synthetic); otherwise a file in that format."""
    path: str | None = None
    """The dataset file (not for 'synthetic')."""
    num_train: int = 256
    """Training tasks (synthetic: generated; files: the first num_train after a seeded shuffle; 0 = all)."""
    num_eval: int = 50
    """Held-out tasks, disjoint from training (synthetic: a different seed)."""
    seed: int = 0
    """Seed of the generator and of the split."""
    categories: list[Category] = field(default_factory=lambda: ["single", "multiple", "parallel", "parallel_multiple"])
    """Task kinds to generate (synthetic)."""
    irrelevance_rate: float = 0.15
    """Fraction of irrelevance tasks added (no tool fits; the right answer calls none). 0.15: Tool-N1."""
    domains: list[str] | None = None
    """Restrict synthetic tools and requests to these catalogue domains (None = all 16)."""
    max_tools: int = 3
    """Most tools offered per synthetic task (keeps prompts short for small models)."""
    max_calls: int = 2
    """Most calls in a synthetic task's answer."""
    on_error: Literal["raise", "skip"] = "raise"
    """Malformed rows in a file: stop with the file/line/field, or skip and report every skipped row."""

    def __post_init__(self) -> None:
        if self.source != "synthetic" and not self.path:
            raise ConfigError(f"source {self.source!r} needs a path", field="data.path")
        if self.num_train < 0 or self.num_eval < 0:
            raise ConfigError("num_train and num_eval must be >= 0", field="data.num_train")
        if not 0.0 <= self.irrelevance_rate < 1.0:
            raise ConfigError(f"must be in [0, 1), got {self.irrelevance_rate}", field="data.irrelevance_rate")


@dataclass
class PromptConfig:
    """How a task becomes the text the model continues."""

    style: Literal["instruct", "zero"] = "instruct"
    """'instruct': the chat template with tools. 'zero': a plain-text template for base models (Tool Zero)."""
    format: OutputFormat = OutputFormat.HERMES
    """How the model writes calls (hermes <tool_call>, json_lines, json_list, python)."""
    think: bool = False
    """Ask for a <think>...</think> block before the calls."""
    self_exemplar: bool = False
    """ToolExpander's Self-Exemplifying Thinking: inside <think> write an <example> call and analyse it."""
    base_shots: int = 0
    """Demonstrations in every prompt (hard samples get more: hard_sampling). 0 = zero-shot."""


@dataclass
class RolloutSection:
    """The vLLM engines and the sampling of the GRPO groups."""

    mode: EngineMode = "inproc"
    """'inproc' (colocated vLLM in the driver process) or 'server' (vLLM OpenAI servers)."""
    dtype: EngineDType = "float32"
    """Engine dtype. fp32 on CPU keeps engine and trainer logprobs equal (the sync check's tolerance)."""
    num_servers: int = 1
    """Server mode: vLLM servers the trainer starts on its own node (ignored with server_urls)."""
    server_urls: list[str] = field(default_factory=list)
    """Server mode: attach to vLLM servers started elsewhere (the SLURM scripts' rollout nodes,
    `python -m megatron_toolrl.launch.vllm_node`) instead of starting any. Empty: start locally."""
    tensor_parallel: int = 1
    """Server mode: vLLM tensor parallelism of each server (must match the external servers':
    the weight-sync group has 1 + servers x tensor_parallel ranks)."""
    transport: SyncTransportName = "shm"
    """Weight-sync transport for servers: 'shm' (same node) or 'dist' (torch.distributed group)."""
    sync_master_addr: str = "127.0.0.1"
    """'dist' transport: this trainer's address as the servers reach it (the SLURM head node)."""
    sync_master_port: int = 0
    """'dist' transport: port of the weight-sync group's store on sync_master_addr. 0: any free
    port (told to the servers by RPC); set it where a firewall opens only known ports."""
    max_model_len: int = 2048
    kv_cache_gib: int = 1
    temperature: float = 1.0
    """Sampling temperature of the GRPO groups (the policy's logprobs use the same)."""
    top_p: float = 1.0
    max_new_tokens: int = 128
    """Generation budget per completion."""
    verify_every: int = 1
    """Check engine-vs-trainer logprobs on the probe batch every this many pushes (1 = every push)."""

    def __post_init__(self) -> None:
        if self.server_urls and self.mode != "server":
            raise ConfigError("server_urls needs rollout.mode=server", field="rollout.server_urls")
        for url in self.server_urls:
            if not str(url).startswith(("http://", "https://")):
                raise ConfigError(f"must be http(s) URLs, got {url!r}", field="rollout.server_urls")
        if self.tensor_parallel < 1:
            raise ConfigError(f"must be >= 1, got {self.tensor_parallel}", field="rollout.tensor_parallel")
        if self.mode == "inproc" and self.tensor_parallel != 1:
            raise ConfigError("the in-process engine runs one worker; use rollout.mode=server for TP > 1",
                              field="rollout.tensor_parallel")
        if not 0 <= self.sync_master_port <= 65535:
            raise ConfigError(f"must be a port number (0 = any free port), got {self.sync_master_port}",
                              field="rollout.sync_master_port")


@dataclass
class GRPOConfig:
    """Group sampling, advantages and the update."""

    prompts_per_step: int = 8
    """Prompts per step (each gets group_size completions)."""
    group_size: int = 8
    """Completions per prompt (GRPO's G)."""
    advantage: AdvantageMode = "mean_std"
    """mean_std (GRPO), mean (Dr. GRPO), leave_one_out (RLOO)."""
    loss: PolicyLossConfig = field(default_factory=PolicyLossConfig)
    epochs_per_batch: int = 1
    """Passes over each batch of rollouts (PPO epochs). 1 = on-policy GRPO."""
    minibatches: int = 1
    """Optimizer steps per pass (the batch is split into this many minibatches)."""
    micro_batch_size: int = 4
    """Sequences per forward/backward (memory knob; the result does not depend on it)."""
    recompute_old_logprobs: bool = False
    """Run the separate old-logprob forward pass even when the update is one on-policy optimizer
    step (epochs_per_batch = minibatches = 1). There the old logprobs are the current ones
    detached, so by default the pass is skipped and the ratio is exactly 1 (TRL does the same);
    with more epochs or minibatches the pass always runs."""
    dynamic_sampling: bool = False
    """DAPO: drop groups whose rewards are all equal and sample more prompts to refill."""
    dynamic_sampling_max_rounds: int = 3
    """Most extra generation rounds per step when refilling."""

    def __post_init__(self) -> None:
        for name in ("prompts_per_step", "group_size", "epochs_per_batch", "minibatches", "micro_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"must be >= 1, got {getattr(self, name)}", field=f"grpo.{name}")
        rows = self.prompts_per_step * self.group_size
        if (rows // self.minibatches) % self.micro_batch_size or rows % self.minibatches:
            raise ConfigError(f"{rows} sequences per step (prompts_per_step x group_size) must split into "
                              f"{self.minibatches} minibatch(es) of whole micro-batches of {self.micro_batch_size}",
                              field="grpo.micro_batch_size")
        if self.group_size < 2 and self.advantage != "mean":
            raise ConfigError("group-relative advantages need group_size >= 2", field="grpo.group_size")


@dataclass
class SFTConfig:
    """Supervised fine-tuning on reference answers (the papers' SFT baselines and warm starts)."""

    steps: int = 0
    """Optimizer steps of SFT before RL (0 = none). `megatron-toolrl sft` runs only this."""
    batch_size: int = 8
    lr: float = 5e-5
    """SFT learning rate (a constant; our choice for 135M-1.5B models)."""
    num_tasks: int = 256
    """Synthetic tasks generated for SFT (a different seed from the RL tasks)."""

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("need steps >= 0, batch_size >= 1, lr > 0", field="sft")


@dataclass
class CheckpointConfig:
    dir: str = "runs/default/checkpoints"
    """Where checkpoints go: <dir>/step_<N>/ plus <dir>/latest (the step of the newest complete one)."""
    interval: int = 0
    """Save every this many steps (0 = only at the end and on preemption)."""
    resume: bool = False
    """Continue from <dir>/latest when it exists."""
    keep: int = 2
    """Newest checkpoints kept on disk (older ones are deleted after a save)."""


@dataclass
class MetricsConfig:
    dir: str = "runs/default"
    """Run directory: metrics.jsonl, tensorboard/, curves.png, summary.json, eval reports."""
    tensorboard: bool = True
    plot: bool = True
    """Write curves.png at the end."""


@dataclass
class EvalConfig:
    """Held-out evaluation (greedy decoding)."""

    at_start: bool = True
    at_end: bool = True
    interval: int = 0
    """Also every this many steps (0 = never in between)."""
    bfcl_categories: list[str] = field(default_factory=list)
    """BFCL categories scored with bfcl-eval's checker (e.g. simple_python, multiple); empty = none."""
    bfcl_per_category: int = 20
    """Entries per BFCL category (a fixed subset: the first N by id)."""
    max_new_tokens: int = 128


@dataclass
class GuardConfig:
    """Collapse guard: roll back to the last good checkpoint with a lower LR."""

    enabled: bool = True
    grad_norm_spike: float = 20.0
    """A step whose grad norm exceeds this times the median of the last 10 is a spike."""
    reward_collapse_fraction: float = 0.5
    """Mean reward below this fraction of the best 5-step average (after warm-up) is a collapse."""
    min_entropy: float = 0.0
    """Mean token entropy below this is an entropy collapse (0 disables)."""
    lr_factor: float = 0.5
    """LR multiplier applied after each rollback."""
    max_rollbacks: int = 3


@dataclass
class TrainConfig:
    """A GRPO run."""

    mode: Mode = "grpo"
    """'toolexpander' and 'tool_zero' check that the recipe turns on what the paper needs."""
    hf_dir: str = "artifacts/smollm2-135m-instruct"
    """Initial policy weights and tokenizer (an HF directory)."""
    seed: int = 1234
    steps: int = 10
    """GRPO steps."""
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    data: DataConfig = field(default_factory=DataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    hard_sampling: HardSamplingConfig = field(default_factory=HardSamplingConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    """Cluster shape for the planner and the SLURM/nemo-run launchers; the trainer itself ignores it."""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"must be >= 0, got {self.steps}", field="steps")
        if self.prompt.self_exemplar and not self.prompt.think:
            raise ConfigError("self_exemplar needs think: true (the example is written inside <think>)", field="prompt.self_exemplar")
        if self.reward.exemplar.enabled and not self.prompt.self_exemplar:
            raise ConfigError("the self-exemplar bonus needs prompt.self_exemplar: true", field="reward.exemplar.enabled")
        if self.mode == "toolexpander":
            if not self.hard_sampling.enabled:
                raise ConfigError("toolexpander mode needs hard_sampling.enabled: true", field="hard_sampling.enabled")
            if self.grpo.loss.kl_coef != 0.0:
                raise ConfigError("toolexpander mode removes the KL term (kl_coef: 0)", field="grpo.loss.kl_coef")
            if self.optimizer.lr_schedule.style != "exponential":
                raise ConfigError("toolexpander mode uses exponential LR decay", field="optimizer.lr_schedule.style")
        if self.mode == "tool_zero":
            if self.reward.schedule is None and self.reward.trigger is None:
                raise ConfigError("tool_zero mode needs the GG reward schedule (reward.schedule or reward.trigger)",
                                  field="reward.schedule")
            if not self.reward.ast.enabled:
                raise ConfigError("tool_zero mode shifts the reward to strict AST correctness (reward.ast.enabled)",
                                  field="reward.ast.enabled")
