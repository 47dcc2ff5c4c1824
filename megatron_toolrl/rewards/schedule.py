"""Reward schedules over training steps, and the metric trigger that can start them.

Tool Zero (GG-GRPO, arXiv 2511.01934) states only that its reward "progressively shifts from
exploratory to exploitative" tool use, ending in strict AST correctness; the shape of that shift is
not public. ToolRL (arXiv 2504.13958, code `verl/utils/reward_score/rlla.py`) ships one concrete
case: a linear 150-step move of reward scale from format to correctness. So a schedule here is a
*progress* p(t) in [0, 1] with a configurable shape; every scheduled quantity (a term's weight or
its reward range) is `start + (end - start) * p(t)` (see `config.Ramp`).

The optional `MetricTrigger` holds the schedule at p = 0 until a running metric (e.g. the batch
format pass-rate) exceeds a threshold; the schedule window is then counted from the step it fired.
Its state is part of the trainer checkpoint (`state_dict` / `load_state_dict`) so a resumed run
continues on exactly the same reward.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, get_args

from megatron_toolrl.errors import CheckpointError, ConfigError

ScheduleShape = Literal["linear", "cosine", "step", "exponential"]
"""linear: p = u. cosine: p = (1 - cos(pi u)) / 2 (slow start and end). step: `levels` equal jumps,
p = floor(u * levels) / levels (one jump at `end_step` by default). exponential:
p = (1 - exp(-rate u)) / (1 - exp(-rate)) (rate > 0 moves early, rate < 0 moves late). Here u is the
fraction of the window [start_step, end_step] already passed, clamped to [0, 1]."""

SCHEDULE_SHAPES: tuple[str, ...] = get_args(ScheduleShape)

TriggerMetric = Literal["format", "partial", "binary", "ast"]
"""The per-sample raw score (in [0, 1]) whose batch mean drives the trigger: `format` is the
format pass-rate, `ast` the strict-AST accuracy, `partial` the mean ToolRL partial score."""

TRIGGER_METRICS: tuple[str, ...] = get_args(TriggerMetric)


@dataclass(frozen=True)
class ScheduleConfig:
    """Where and how a scheduled quantity moves from its start value to its end value."""

    shape: ScheduleShape = "linear"
    """Curve of the move. Default linear: ToolRL's SCHEDULEREWARD is linear (rlla.py)."""
    start_step: int = 0
    """Training step at which the move begins (p = 0 up to and including this step). Counted from
    the step the metric trigger fired when a trigger is configured. Default 0: ToolRL starts at 0."""
    end_step: int = 150
    """Training step at which the move is complete (p = 1 from here on). Default 150: ToolRL's
    SCHEDULEREWARD horizon (rlla.py). Tool Zero's horizon is not public."""
    rate: float = 5.0
    """`exponential` only: curvature. Our choice (5.0: 92% of the move is done halfway through the
    window)."""
    levels: int = 1
    """`step` only: number of equal jumps across the window. Default 1: one jump at `end_step`,
    which is ToolRL's MAX1STEP30MAX3 variant with end_step=30."""

    def __post_init__(self) -> None:
        if self.shape not in SCHEDULE_SHAPES:
            raise ConfigError(f"must be one of {SCHEDULE_SHAPES}, got {self.shape!r}", field="shape")
        if not isinstance(self.start_step, int) or self.start_step < 0:
            raise ConfigError(f"must be an integer >= 0, got {self.start_step!r}", field="start_step")
        if not isinstance(self.end_step, int) or self.end_step < self.start_step:
            raise ConfigError(
                f"must be an integer >= start_step ({self.start_step}), got {self.end_step!r}", field="end_step"
            )
        if self.shape == "exponential" and (not math.isfinite(self.rate) or abs(self.rate) < 1e-9):
            raise ConfigError(f"must be finite and non-zero for the exponential shape, got {self.rate!r}", field="rate")
        if not isinstance(self.levels, int) or self.levels < 1:
            raise ConfigError(f"must be an integer >= 1, got {self.levels!r}", field="levels")


def progress(schedule: ScheduleConfig, step: int, origin: int = 0) -> float:
    """p(step) in [0, 1] for a window [origin + start_step, origin + end_step].

    `origin` is the step the metric trigger fired (0 without a trigger). Every shape is
    non-decreasing in `step`, 0 before the window and 1 after it.
    """
    start = origin + schedule.start_step
    end = origin + schedule.end_step
    if end == start:
        # a zero-length window is a jump at `start` whatever the shape
        return 1.0 if step >= start else 0.0
    if step <= start:
        return 0.0
    if step >= end:
        return 1.0
    u = (step - start) / (end - start)
    if schedule.shape == "linear":
        return u
    if schedule.shape == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * u))
    if schedule.shape == "step":
        return math.floor(u * schedule.levels) / schedule.levels
    # exponential: normalised so that p(0) = 0 and p(1) = 1 for either sign of the rate
    return math.expm1(-schedule.rate * u) / math.expm1(-schedule.rate)


@dataclass(frozen=True)
class TriggerConfig:
    """Start the schedules only once a running batch metric exceeds a threshold.

    Our choice, labelled as such: GG-GRPO's rule for when to shift is not public. The idea follows
    the anchors' advice to drive the shift from training health (ANCHORS.md section 1.6): move to strict
    AST rewards once the policy reliably produces well-formed calls.
    """

    metric: TriggerMetric = "format"
    """Raw per-sample score whose batch mean is watched. Default: format pass-rate (our choice)."""
    threshold: float = 0.9
    """Fires when the running mean is strictly above this value. Our choice."""
    window: int = 5
    """Running mean over the last `window` completed steps (each step weighted by its sample
    count). Our choice: smooths single lucky batches."""

    def __post_init__(self) -> None:
        if self.metric not in TRIGGER_METRICS:
            raise ConfigError(f"must be one of {TRIGGER_METRICS}, got {self.metric!r}", field="metric")
        if not (0.0 <= self.threshold <= 1.0):
            raise ConfigError(f"must be in [0, 1], got {self.threshold!r}", field="threshold")
        if not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"must be an integer >= 1, got {self.window!r}", field="window")


class MetricTrigger:
    """Watches a per-step metric and records the step at which it first exceeded the threshold.

    Values observed for one step are summed until a later step begins: only completed steps enter
    the running window, so the trigger's state (and thus the reward) never changes in the middle of
    a step, however many reward calls the step makes. A trigger that fires when step t is completed
    (at the start of step t + 1, before it is scored) records `fired_step = t`; schedules then
    count their window from t.
    """

    def __init__(self, config: TriggerConfig):
        self.config = config
        self.fired_step: int | None = None
        self._window: deque[tuple[float, int]] = deque(maxlen=config.window)
        self._pending_step: int | None = None
        self._pending_sum = 0.0
        self._pending_count = 0

    @property
    def fired(self) -> bool:
        return self.fired_step is not None

    def origin(self) -> int | None:
        """The step schedules count from, or None while the trigger has not fired."""
        return self.fired_step

    def running_mean(self) -> float | None:
        """Mean of the metric over the completed steps in the window (None before any)."""
        total = sum(c for _, c in self._window)
        if total == 0:
            return None
        return sum(s for s, _ in self._window) / total

    def begin_step(self, step: int) -> None:
        """Complete the step in progress if `step` is a later one (so it can fire before `step` is scored)."""
        if self._pending_step is not None and step < self._pending_step:
            raise ValueError(f"metric trigger: step went backwards ({step} after {self._pending_step})")
        if self._pending_step is not None and step > self._pending_step:
            self._complete_pending()
        self._pending_step = step

    def observe(self, step: int, values: list[float]) -> None:
        """Add one batch of per-sample metric values observed at `step`."""
        self.begin_step(step)
        self._pending_sum += float(sum(values))
        self._pending_count += len(values)

    def _complete_pending(self) -> None:
        if self._pending_count > 0:
            self._window.append((self._pending_sum, self._pending_count))
            mean = self.running_mean()
            if self.fired_step is None and mean is not None and mean > self.config.threshold:
                self.fired_step = self._pending_step
        self._pending_sum, self._pending_count = 0.0, 0

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (plain ints, floats, lists)."""
        return {
            "fired_step": self.fired_step,
            "window": [[s, c] for s, c in self._window],
            "pending_step": self._pending_step,
            "pending_sum": self._pending_sum,
            "pending_count": self._pending_count,
            "config": {"metric": self.config.metric, "threshold": self.config.threshold, "window": self.config.window},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from `state_dict`; a state saved under a different trigger config is refused."""
        try:
            saved = state["config"]
            if (saved["metric"], float(saved["threshold"]), int(saved["window"])) != (
                self.config.metric,
                self.config.threshold,
                self.config.window,
            ):
                raise CheckpointError(
                    f"saved under trigger config {saved}, the run now uses {self.config}", field="reward.trigger"
                )
            fired = state["fired_step"]
            self.fired_step = None if fired is None else int(fired)
            self._window = deque(((float(s), int(c)) for s, c in state["window"]), maxlen=self.config.window)
            pending = state["pending_step"]
            self._pending_step = None if pending is None else int(pending)
            self._pending_sum = float(state["pending_sum"])
            self._pending_count = int(state["pending_count"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"malformed metric-trigger state: {exc!r}", field="reward.trigger") from exc
