"""One reward per sample from the configured terms at training step t, with every part kept for logging.

    reward = sum over enabled terms k of weight_k(t) * (low_k(t) + (high_k(t) - low_k(t)) * score_k)
             + exemplar amount (when enabled and detected)

Every raw score (format, partial, binary, ast in [0, 1]) is computed for every sample, enabled or
not, so the logs show all of them; the parse result of each sample is returned so the trainer
does not parse twice. The only state is the optional metric trigger (`state_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.rewards.binary import binary_score
from megatron_toolrl.rewards.config import Ramp, RewardConfig
from megatron_toolrl.rewards.exemplar import has_self_exemplar
from megatron_toolrl.rewards.format import declines_to_call, format_score
from megatron_toolrl.rewards.partial import partial_score
from megatron_toolrl.rewards.schedule import MetricTrigger, progress
from megatron_toolrl.toolcall import check, check_calls, parse_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits, ParseResult

TERMS = ("format", "partial", "binary", "ast")


@dataclass
class RewardBatch:
    """Rewards of a batch of samples and everything that went into them."""

    rewards: list[float]
    """The scalar reward per sample (what GRPO normalises per group)."""
    components: dict[str, list[float]]
    """Per enabled term (and `exemplar` when enabled): its contribution per sample. They sum to `rewards`."""
    scores: dict[str, list[float]]
    """Raw score in [0, 1] of every term per sample (`exemplar`: 1 when detected), enabled or not."""
    parses: list[ParseResult]
    """The parsed answer per sample."""
    correct: list[bool]
    """Strict correctness per sample (the AST check with BFCL semantics), e.g. for hard-sample mining."""
    step: int
    coefficients: dict[str, float] = field(default_factory=dict)
    """`<term>.weight|low|high` at this step, plus `trigger_fired` (0/1)."""

    def metrics(self, prefix: str = "reward/") -> dict[str, float]:
        """Batch means for logging: the reward, each component, each raw score, the coefficients."""
        n = max(len(self.rewards), 1)
        out = {f"{prefix}mean": sum(self.rewards) / n}
        for name, values in self.components.items():
            out[f"{prefix}component/{name}"] = sum(values) / n
        for name, values in self.scores.items():
            out[f"{prefix}score/{name}"] = sum(values) / n
        out[f"{prefix}correct"] = sum(self.correct) / n
        for name, value in self.coefficients.items():
            out[f"{prefix}coef/{name}"] = value
        return out


class RewardFn:
    """The configured reward. Call `compute_rewards(tasks, texts, step, fmt)` once per rollout batch."""

    def __init__(self, config: RewardConfig, limits: ParseLimits = ParseLimits()):
        self.config = config
        self.limits = limits
        self.trigger = MetricTrigger(config.trigger) if config.trigger is not None else None

    # ----- schedule -----

    def _ramp(self, ramp: Ramp, step: int) -> float:
        if ramp.end is None:
            return ramp.at(0.0)
        schedule = ramp.schedule or self.config.schedule
        assert schedule is not None  # RewardConfig.__post_init__ guarantees it
        if self.trigger is not None:
            origin = self.trigger.origin()
            if origin is None:
                return ramp.at(0.0)  # not fired yet: every schedule waits at its start
            return ramp.at(progress(schedule, step, origin))
        return ramp.at(progress(schedule, step))

    def coefficients(self, step: int) -> dict[str, float]:
        """Weight, low and high of every term at `step` (with the trigger's current state)."""
        out: dict[str, float] = {}
        for name, term in self.config.terms().items():
            out[f"{name}.weight"] = self._ramp(term.weight, step)
            out[f"{name}.low"] = self._ramp(term.low, step)
            out[f"{name}.high"] = self._ramp(term.high, step)
        if self.trigger is not None:
            out["trigger_fired"] = float(self.trigger.fired)
        return out

    # ----- scoring -----

    def score_sample(self, task: ToolTask, text: str, parsed: ParseResult, fmt: OutputFormat) -> dict[str, float]:
        """Raw scores of one answer (all terms, plus `exemplar` when enabled)."""
        cfg = self.config
        if task.ground_truth:
            well_formed = parsed.error is None
        else:
            well_formed = declines_to_call(text, parsed, fmt)
        if parsed.error is None:
            ast_ok = check_calls(task.tools, parsed.calls, task.ground_truth, task.category).valid
        else:  # let the checker apply its own rule to malformed text (e.g. BFCL irrelevance)
            ast_ok = check(task.tools, text, task.ground_truth, task.category, fmt, self.limits).valid
        scores = {
            "format": format_score(text, parsed, bool(task.ground_truth), fmt, cfg.require_think),
            "partial": partial_score(task.ground_truth, parsed.calls, well_formed),
            "binary": binary_score(parsed, task.ground_truth, cfg.require_think, well_formed),
            "ast": 1.0 if ast_ok else 0.0,
        }
        if cfg.exemplar.enabled:
            found = has_self_exemplar(parsed, task.tools, fmt, cfg.exemplar, self.limits)
            scores["exemplar"] = 1.0 if found else 0.0
        return scores

    def compute_rewards(
        self,
        tasks: Sequence[ToolTask],
        texts: Sequence[str],
        step: int,
        fmt: OutputFormat,
        update_trigger: bool = True,
    ) -> RewardBatch:
        """Rewards for `texts[i]` answering `tasks[i]` at training step `step`.

        With a metric trigger, the batch's metric is recorded for `step` (unless `update_trigger`
        is False, e.g. for evaluation batches); the trigger can only fire once the step is over.
        """
        if len(tasks) != len(texts):
            raise ValueError(f"{len(tasks)} tasks but {len(texts)} texts")
        if self.trigger is not None and update_trigger:
            self.trigger.begin_step(step)  # a trigger completed by the previous step applies to this one
        coefs = self.coefficients(step)
        enabled = [name for name, term in self.config.terms().items() if term.enabled]
        parses = [parse_calls(text, fmt, self.limits) for text in texts]
        per_sample = [self.score_sample(t, x, p, fmt) for t, x, p in zip(tasks, texts, parses)]
        names = list(TERMS) + (["exemplar"] if self.config.exemplar.enabled else [])
        scores = {name: [s[name] for s in per_sample] for name in names}
        components: dict[str, list[float]] = {}
        for name in enabled:
            w, lo, hi = coefs[f"{name}.weight"], coefs[f"{name}.low"], coefs[f"{name}.high"]
            components[name] = [w * (lo + (hi - lo) * s) for s in scores[name]]
        if self.config.exemplar.enabled:
            components["exemplar"] = [self.config.exemplar.amount * s for s in scores["exemplar"]]
        rewards = [sum(parts) for parts in zip(*components.values())] if components else [0.0] * len(texts)
        if self.trigger is not None and update_trigger:
            self.trigger.observe(step, scores[self.trigger.config.metric])
        return RewardBatch(
            rewards=rewards,
            components=components,
            scores=scores,
            parses=parses,
            correct=[s["ast"] == 1.0 for s in per_sample],
            step=step,
            coefficients=coefs,
        )

    __call__ = compute_rewards

    # ----- checkpointing -----

    def state_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger.state_dict() if self.trigger is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("trigger")
        if self.trigger is not None and saved is not None:
            self.trigger.load_state_dict(saved)
        elif (self.trigger is None) != (saved is None):
            raise CheckpointError(
                "the checkpoint's reward state and the configured reward disagree about the metric trigger",
                field="reward.trigger",
            )
