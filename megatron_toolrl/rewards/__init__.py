"""Rewards for tool-calling GRPO: format, ToolRL partial, Tool-N1 binary, strict AST, self-exemplar
bonus, and the schedule that moves weight between them over training (docs/rewards.md)."""

from megatron_toolrl.rewards.compose import RewardBatch, RewardFn
from megatron_toolrl.rewards.config import ExemplarConfig, Ramp, RewardConfig, TermConfig
from megatron_toolrl.rewards.schedule import MetricTrigger, ScheduleConfig, TriggerConfig, progress

__all__ = [
    "ExemplarConfig",
    "MetricTrigger",
    "Ramp",
    "RewardBatch",
    "RewardConfig",
    "RewardFn",
    "ScheduleConfig",
    "TermConfig",
    "TriggerConfig",
    "progress",
]
