"""ToolExpander's Dynamic Multi-Round Hard Sampling (arXiv 2510.07737), as a small state machine.

A prompt is *hard* when none of its rollouts is correct over `judge_rollouts` rollouts (the
abstract: "no correct output in 10 rollouts"). A hard prompt enters the pool at round 1: the next
time it is trained on, it carries `shots(1)` few-shot demonstrations. If it is still never
correct over the next `judge_rollouts` rollouts it moves to round 2 with `shots(2)` demos, and so
on; after `max_rounds` rounds without a correct rollout it is retired (no longer sampled). A
prompt that gets a correct rollout in any round graduates: it leaves the pool and is sampled
plainly again.

Rollouts are counted across steps: with a group size of 8 and `judge_rollouts=10` a verdict
needs two appearances. Everything here is plain data so it goes into the checkpoint as JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from megatron_toolrl.errors import ConfigError


@dataclass
class HardSamplingConfig:
    """Dynamic multi-round hard sampling."""

    enabled: bool = False
    """Off by default; the ToolExpander recipes turn it on."""
    judge_rollouts: int = 10
    """Rollouts without a correct one that make a prompt hard. 10: ToolExpander abstract."""
    max_rounds: int = 3
    """Rounds of few-shot substitution before a prompt is retired. Not in the abstract; our choice."""
    shots_first_round: int = 2
    """Demonstrations in round 1. Our choice (2 demos lift SmolLM2-135M's well-formed calls from 0%
    to 74%: shared/notes/ENVIRONMENT.md)."""
    shots_per_round_increase: int = 1
    """Extra demonstrations per later round (round r carries first + (r-1) * increase). Our choice."""
    max_shots: int = 4
    """Upper bound on demonstrations (prompt length). Our choice."""
    requeue: bool = True
    """Train a prompt that became hard again in the next batches (rather than at its next turn in
    the data order), so rounds happen within short runs. Our choice."""

    def __post_init__(self) -> None:
        if self.judge_rollouts < 1:
            raise ConfigError(f"must be >= 1, got {self.judge_rollouts}", field="hard_sampling.judge_rollouts")
        if self.max_rounds < 1:
            raise ConfigError(f"must be >= 1, got {self.max_rounds}", field="hard_sampling.max_rounds")
        if self.shots_first_round < 1 or self.max_shots < self.shots_first_round:
            raise ConfigError("need 1 <= shots_first_round <= max_shots", field="hard_sampling.shots_first_round")
        if self.shots_per_round_increase < 0:
            raise ConfigError("must be >= 0", field="hard_sampling.shots_per_round_increase")

    def shots(self, round_: int) -> int:
        """Demonstrations carried in `round_` (1-based); 0 outside the pool."""
        if round_ <= 0:
            return 0
        return min(self.max_shots, self.shots_first_round + (round_ - 1) * self.shots_per_round_increase)


Event = Literal["became_hard", "next_round", "graduated", "retired"]


@dataclass
class _Tracker:
    round: int = 0
    """0 = not in the pool; 1..max_rounds = in the pool; max_rounds + 1 = retired."""
    rollouts: int = 0
    """Rollouts seen in the current round."""
    correct: int = 0
    """Correct rollouts seen in the current round."""


@dataclass
class HardSamplePool:
    config: HardSamplingConfig
    trackers: dict[str, _Tracker] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=lambda: {"became_hard": 0, "next_round": 0, "graduated": 0, "retired": 0})

    def shots_for(self, task_id: str) -> int:
        """How many demonstrations to give `task_id` now."""
        tracker = self.trackers.get(task_id)
        if tracker is None or self.is_retired(task_id):
            return 0
        return self.config.shots(tracker.round)

    def round_of(self, task_id: str) -> int:
        tracker = self.trackers.get(task_id)
        return tracker.round if tracker else 0

    def is_retired(self, task_id: str) -> bool:
        tracker = self.trackers.get(task_id)
        return tracker is not None and tracker.round > self.config.max_rounds

    def observe(self, task_id: str, num_rollouts: int, num_correct: int) -> Event | None:
        """Record one group's outcome for `task_id`; returns what changed, if anything."""
        if not self.config.enabled or self.is_retired(task_id):
            return None
        tracker = self.trackers.setdefault(task_id, _Tracker())
        tracker.rollouts += num_rollouts
        tracker.correct += num_correct
        event: Event | None = None
        if tracker.correct > 0:
            if tracker.round > 0:
                event = "graduated"
            tracker.round, tracker.rollouts, tracker.correct = 0, 0, 0
        elif tracker.rollouts >= self.config.judge_rollouts:
            tracker.round += 1
            tracker.rollouts, tracker.correct = 0, 0
            if tracker.round == 1:
                event = "became_hard"
            elif tracker.round > self.config.max_rounds:
                event = "retired"
            else:
                event = "next_round"
        if event is not None:
            self.totals[event] += 1
        # Prompts that are neither in the pool nor half-judged need no state.
        if tracker.round == 0 and tracker.rollouts == 0:
            del self.trackers[task_id]
        return event

    def counts(self) -> dict[str, int]:
        """Current pool size per round, retired count, and the running totals of every event."""
        out = {f"round_{r}": 0 for r in range(1, self.config.max_rounds + 1)}
        out["retired"] = 0
        for tracker in self.trackers.values():
            if tracker.round > self.config.max_rounds:
                out["retired"] += 1
            elif tracker.round > 0:
                out[f"round_{tracker.round}"] += 1
        out["in_pool"] = sum(out[f"round_{r}"] for r in range(1, self.config.max_rounds + 1))
        out.update({f"total_{k}": v for k, v in self.totals.items()})
        return out

    def state_dict(self) -> dict:
        return {"trackers": {k: asdict(v) for k, v in self.trackers.items()}, "totals": dict(self.totals)}

    def load_state_dict(self, state: dict) -> None:
        self.trackers = {k: _Tracker(**v) for k, v in state["trackers"].items()}
        self.totals = dict(state["totals"])
