"""The reward's typed configuration: one field per term, each with the source of its default.

Every term maps a raw score s in [0, 1] to a contribution `weight(t) * (low(t) + (high(t) - low(t)) * s)`.
A `Ramp` is a value that may move with the training step t along a `ScheduleConfig`; constant
values are ramps without an `end`. This single mechanism expresses ToolRL's range schedule (its
150-step format-to-correctness move), Tool Zero's exploratory-to-strict weight shift and plain
fixed rewards. Presets at the bottom build the configurations of the papers (see docs/rewards.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.rewards.schedule import ScheduleConfig, TriggerConfig


@dataclass(frozen=True)
class Ramp:
    """A scalar that moves from `start` to `end` as the schedule progresses (constant if `end` is None)."""

    start: float
    """Value before (and at) the start of the schedule window."""
    end: float | None = None
    """Value once the window has passed; None keeps the value at `start` for the whole run."""
    schedule: ScheduleConfig | None = None
    """This value's own window and shape; None uses `RewardConfig.schedule`. ToolRL's format range
    needs this: its lower end saturates at step 75 while the rest moves until step 150."""

    def at(self, p: float) -> float:
        """The value at schedule progress p in [0, 1]."""
        if self.end is None:
            return float(self.start)
        return float(self.start) + (float(self.end) - float(self.start)) * p

    @property
    def final(self) -> float:
        return float(self.start if self.end is None else self.end)


@dataclass(frozen=True)
class TermConfig:
    """One reward term: whether it counts, its weight, and the range its raw score is mapped to."""

    enabled: bool = False
    """Whether the term adds to the reward. Its raw score is computed and logged either way."""
    weight: Ramp = field(default_factory=lambda: Ramp(1.0))
    """Multiplier of the term. Default 1: ToolRL and Tool-N1 add their terms unweighted."""
    low: Ramp = field(default_factory=lambda: Ramp(0.0))
    """Value for raw score 0 (wrong, malformed)."""
    high: Ramp = field(default_factory=lambda: Ramp(1.0))
    """Value for raw score 1 (right, well formed)."""


@dataclass(frozen=True)
class ExemplarConfig:
    """ToolExpander's Self-Exemplifying Thinking bonus (arXiv 2510.07737).

    The abstract states only "+0.01 reward when the model autonomously generates and analyses
    few-shot examples" in its reasoning; the detection rule below is our choice (docs/rewards.md).
    """

    enabled: bool = False
    """Off by default: new features are off unless a recipe turns them on."""
    amount: float = 0.01
    """Bonus added when an exemplar is detected. 0.01: ToolExpander abstract."""
    min_analysis_words: int = 5
    """Words (outside the `<example>` blocks) the `<think>` text must still hold to count as an
    analysis of the example. Our choice."""
    max_examples: int = 8
    """Most `<example>` blocks inspected per answer (bounds the work on untrusted text). Our choice."""


@dataclass(frozen=True)
class RewardConfig:
    """The complete reward: terms, schedule, trigger and the think requirement.

    Defaults reproduce ToolRL's unscheduled reward (R = R_format in {0, 1} + R_correct in [-3, 3],
    `verl/utils/reward_score/rlla.py`); every other term is off.
    """

    format: TermConfig = field(
        default_factory=lambda: TermConfig(enabled=True, low=Ramp(0.0), high=Ramp(1.0))
    )
    """Format term, raw score in {0, 1}. Default range [0, 1]: ToolRL code (format_min/max_possible)."""
    partial: TermConfig = field(
        default_factory=lambda: TermConfig(enabled=True, low=Ramp(-3.0), high=Ramp(3.0))
    )
    """ToolRL fine-grained correctness, raw score S / S_max in [0, 1]. Default range [-3, 3]:
    ToolRL code (tool_min/max_possible)."""
    binary: TermConfig = field(default_factory=lambda: TermConfig(enabled=False, low=Ramp(0.0), high=Ramp(1.0)))
    """Tool-N1 binary correctness, raw score in {0, 1}. Off by default; range [0, 1]: Tool-N1 code
    (`compute_score_v0` returns 0 or 1)."""
    ast: TermConfig = field(default_factory=lambda: TermConfig(enabled=False, low=Ramp(0.0), high=Ramp(1.0)))
    """Strict AST correctness with BFCL semantics (`toolcall.check`), raw score in {0, 1}. Off by
    default; range [0, 1] is our choice (Tool Zero's AST reward scale is not public)."""
    exemplar: ExemplarConfig = field(default_factory=ExemplarConfig)
    """ToolExpander self-exemplar bonus."""
    require_think: bool = True
    """The answer must open with a `<think>...</think>` block: checked by the format and binary
    terms. Default on: both ToolRL's format regex and Tool-N1's reward require it."""
    schedule: ScheduleConfig | None = None
    """Shared schedule of every `Ramp` with an `end` and no schedule of its own. None: no ramp may
    move. ToolRL's SCHEDULEREWARD is linear over steps 0-150 (`RewardConfig.toolrl_scheduled`)."""
    trigger: TriggerConfig | None = None
    """Hold every schedule at its start until a running batch metric exceeds a threshold; windows
    then count from the step it fired. None: schedules count from step 0. Our choice (GG-GRPO's
    rule is not public)."""

    def __post_init__(self) -> None:
        for name in ("format", "partial", "binary", "ast"):
            term = getattr(self, name)
            if not isinstance(term, TermConfig):
                raise ConfigError(f"must be a TermConfig, got {type(term).__name__}", field=name)
            for part in ("weight", "low", "high"):
                ramp = getattr(term, part)
                if not isinstance(ramp, Ramp):
                    raise ConfigError(f"must be a Ramp, got {type(ramp).__name__}", field=f"{name}.{part}")
                if ramp.end is not None and ramp.schedule is None and self.schedule is None:
                    raise ConfigError(
                        "has an `end` value but neither it nor the reward has a schedule", field=f"{name}.{part}"
                    )
            for when, lo, hi in (("start", term.low.start, term.high.start), ("end", term.low.final, term.high.final)):
                if lo > hi:
                    raise ConfigError(f"low ({lo}) is above high ({hi}) at the schedule {when}", field=f"{name}.low")
        if self.exemplar.amount < 0:
            raise ConfigError(f"must be >= 0, got {self.exemplar.amount}", field="exemplar.amount")
        if self.exemplar.min_analysis_words < 0 or self.exemplar.max_examples < 1:
            raise ConfigError("min_analysis_words must be >= 0 and max_examples >= 1", field="exemplar")

    def terms(self) -> dict[str, TermConfig]:
        """The scored terms by name, in logging order."""
        return {"format": self.format, "partial": self.partial, "binary": self.binary, "ast": self.ast}

    # ----- presets: the papers' rewards as configurations (docs/rewards.md gives the sources) -----

    @classmethod
    def toolrl(cls) -> "RewardConfig":
        """ToolRL's default reward: format {0, 1} + partial correctness [-3, 3]."""
        return cls()

    @classmethod
    def toolrl_scheduled(cls) -> "RewardConfig":
        """ToolRL's SCHEDULEREWARD (rlla.py), linear over 150 steps.

        Format max 2 -> 1 (steps 0-150); format min -2 -> -1, reached at step 75 and held (ToolRL
        computes -2 + 2t/150 and clamps it at -1); correctness max 2 -> 3 and min -2 -> -3 (0-150).
        """
        linear150 = ScheduleConfig(shape="linear", start_step=0, end_step=150)
        return cls(
            format=TermConfig(
                enabled=True,
                low=Ramp(-2.0, -1.0, schedule=ScheduleConfig(shape="linear", start_step=0, end_step=75)),
                high=Ramp(2.0, 1.0),
            ),
            partial=TermConfig(enabled=True, low=Ramp(-2.0, -3.0), high=Ramp(2.0, 3.0)),
            schedule=linear150,
        )

    @classmethod
    def tool_n1(cls) -> "RewardConfig":
        """Nemotron-Tool-N1's binary reward alone (think required, exact multiset match)."""
        default = cls()
        return cls(
            format=replace(default.format, enabled=False),
            partial=replace(default.partial, enabled=False),
            binary=replace(default.binary, enabled=True),
        )

    @classmethod
    def tool_zero(cls, schedule: ScheduleConfig | None = None, trigger: TriggerConfig | None = None) -> "RewardConfig":
        """GG-GRPO-style shift: format + partial (weights 1 -> 0) hand over to strict AST (0 -> 1).

        The abstract gives only the direction of the shift. Ranges [0, 1] for every term and the
        default linear 0-150 window are our choice (the window is ToolRL's horizon).
        """
        fade = Ramp(1.0, 0.0)
        return cls(
            format=TermConfig(enabled=True, weight=fade, low=Ramp(0.0), high=Ramp(1.0)),
            partial=TermConfig(enabled=True, weight=fade, low=Ramp(0.0), high=Ramp(1.0)),
            ast=TermConfig(enabled=True, weight=Ramp(0.0, 1.0), low=Ramp(0.0), high=Ramp(1.0)),
            schedule=schedule or ScheduleConfig(shape="linear", start_step=0, end_step=150),
            trigger=trigger,
        )

    @classmethod
    def toolexpander(cls) -> "RewardConfig":
        """Binary correctness + the +0.01 self-exemplar bonus.

        The bonus is from the ToolExpander abstract; the binary base reward is our choice (the
        paper's base reward is not public; Tool-N1 reports binary beats partial credit).
        """
        return replace(cls.tool_n1(), exemplar=ExemplarConfig(enabled=True))
