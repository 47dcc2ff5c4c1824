"""megatron-core training primitives: vocab-parallel logprobs, token batches, LR schedules,
the MegatronPolicy (DDP + optimizer + schedules) and its checkpoints."""

from megatron_toolrl.policy.batch import TokenBatch, TokenCounts
from megatron_toolrl.policy.checkpoint import CheckpointState, read_checkpoint_state
from megatron_toolrl.policy.logprobs import (
    next_token_entropy,
    next_token_logprobs,
    vocab_parallel_entropy,
    vocab_parallel_logprobs,
)
from megatron_toolrl.policy.lr_schedule import LRScheduleConfig, LRScheduler, lr_at
from megatron_toolrl.policy.optimizer import OptimizerSettings
from megatron_toolrl.policy.policy import LossFn, MegatronPolicy, PolicyGroups, StepResult
from megatron_toolrl.policy.sft_loss import masked_nll_loss

__all__ = [
    "TokenBatch", "TokenCounts", "CheckpointState", "read_checkpoint_state", "next_token_entropy",
    "next_token_logprobs", "vocab_parallel_entropy", "vocab_parallel_logprobs", "LRScheduleConfig", "LRScheduler",
    "lr_at", "OptimizerSettings", "LossFn", "MegatronPolicy", "PolicyGroups", "StepResult", "masked_nll_loss",
]
