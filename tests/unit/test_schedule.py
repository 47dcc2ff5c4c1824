"""Reward schedules: every shape at its boundaries, monotonicity, the metric trigger and its state,
and ToolRL's SCHEDULEREWARD reproduced as a configuration."""

from __future__ import annotations

import json
import math

import pytest

from megatron_toolrl.errors import CheckpointError, ConfigError
from megatron_toolrl.rewards import RewardConfig, RewardFn
from megatron_toolrl.rewards.config import Ramp, TermConfig
from megatron_toolrl.rewards.schedule import MetricTrigger, ScheduleConfig, TriggerConfig, progress

START, END = 10, 20
MID = 15


def _exp_reference(rate: float, u: float) -> float:
    # written out independently of the module: normalised 1 - e^{-rate u}
    return (1 - math.exp(-rate * u)) / (1 - math.exp(-rate))


@pytest.mark.parametrize(
    "schedule, mid_expected",
    [
        (ScheduleConfig("linear", START, END), 0.5),
        (ScheduleConfig("cosine", START, END), 0.5),  # (1 - cos(pi/2)) / 2
        (ScheduleConfig("step", START, END), 0.0),  # one jump, at the end
        (ScheduleConfig("step", START, END, levels=2), 0.5),
        (ScheduleConfig("exponential", START, END, rate=5.0), _exp_reference(5.0, 0.5)),
        (ScheduleConfig("exponential", START, END, rate=-3.0), _exp_reference(-3.0, 0.5)),
    ],
    ids=["linear", "cosine", "step1", "step2", "exp+", "exp-"],
)
def test_shape_boundaries(schedule: ScheduleConfig, mid_expected: float) -> None:
    assert progress(schedule, 0) == 0.0  # before the start
    assert progress(schedule, START - 1) == 0.0
    assert progress(schedule, START) == 0.0  # at the start
    assert progress(schedule, MID) == pytest.approx(mid_expected, abs=1e-12)
    assert progress(schedule, END) == 1.0  # at the end
    assert progress(schedule, END + 100) == 1.0  # after the end


def test_cosine_and_exponential_curvature() -> None:
    # a quarter of the way: cosine is slow to start, exp(+) fast, exp(-) slow
    quarter = START + (END - START) // 4  # u = 0.2
    assert progress(ScheduleConfig("cosine", START, END), quarter) == pytest.approx((1 - math.cos(math.pi * 0.2)) / 2)
    assert progress(ScheduleConfig("exponential", START, END, rate=5.0), quarter) > 0.2
    assert progress(ScheduleConfig("exponential", START, END, rate=-3.0), quarter) < 0.2


@pytest.mark.parametrize("shape", ["linear", "cosine", "step", "exponential"])
@pytest.mark.parametrize("levels,rate", [(1, 5.0), (4, -2.0)])
def test_monotone_and_bounded(shape: str, levels: int, rate: float) -> None:
    schedule = ScheduleConfig(shape, 3, 47, rate=rate, levels=levels)  # type: ignore[arg-type]
    values = [progress(schedule, t) for t in range(0, 60)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b for a, b in zip(values, values[1:]))
    assert values[0] == 0.0 and values[-1] == 1.0


def test_zero_length_window_is_a_jump() -> None:
    schedule = ScheduleConfig("cosine", 7, 7)
    assert [progress(schedule, t) for t in (6, 7, 8)] == [0.0, 1.0, 1.0]


def test_origin_shifts_the_window() -> None:
    schedule = ScheduleConfig("linear", 0, 10)
    assert progress(schedule, 105, origin=100) == 0.5
    assert progress(schedule, 99, origin=100) == 0.0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"shape": "quadratic"}, "shape"),
        ({"start_step": -1}, "start_step"),
        ({"start_step": 5, "end_step": 4}, "end_step"),
        ({"shape": "exponential", "rate": 0.0}, "rate"),
        ({"levels": 0}, "levels"),
    ],
)
def test_schedule_config_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        ScheduleConfig(**kwargs)
    assert err.value.field == field


def test_ramp_without_schedule_is_rejected() -> None:
    with pytest.raises(ConfigError, match="partial.high"):
        RewardConfig(partial=TermConfig(enabled=True, low=Ramp(-3.0), high=Ramp(2.0, 3.0)))
    with pytest.raises(ConfigError, match="format.low"):
        RewardConfig(format=TermConfig(enabled=True, low=Ramp(2.0), high=Ramp(1.0)))


# ---------------------------------------------------------------------- metric trigger


def _feed(trigger: MetricTrigger, steps: dict[int, list[float]]) -> None:
    for step, values in steps.items():
        trigger.observe(step, values)


def test_trigger_fires_once_the_completed_window_exceeds_threshold() -> None:
    trigger = MetricTrigger(TriggerConfig(metric="format", threshold=0.5, window=2))
    trigger.observe(0, [0.0, 0.0])
    trigger.observe(0, [1.0, 0.0])  # same step, second micro-batch: step 0 mean = 0.25
    trigger.observe(1, [1.0, 1.0])  # completes step 0: window mean 0.25
    assert not trigger.fired
    trigger.observe(2, [1.0, 1.0])  # completes step 1: window (1 + 2) / (4 + 2) = 0.5, not > 0.5
    assert not trigger.fired and trigger.running_mean() == pytest.approx(0.5)
    trigger.observe(3, [0.0])  # completes step 2: window (2 + 2) / 4 = 1.0
    assert trigger.fired and trigger.fired_step == 2
    trigger.observe(4, [0.0])  # falling back later does not un-fire it
    trigger.observe(5, [0.0])
    assert trigger.fired_step == 2


def test_trigger_rejects_steps_going_backwards() -> None:
    trigger = MetricTrigger(TriggerConfig())
    trigger.observe(3, [1.0])
    with pytest.raises(ValueError, match="backwards"):
        trigger.observe(2, [1.0])


def test_trigger_state_round_trip_gives_the_same_run() -> None:
    config = TriggerConfig(metric="ast", threshold=0.6, window=3)
    history = {0: [0.2, 0.4], 1: [0.5, 0.9], 2: [0.8], 3: [0.9, 0.7], 4: [1.0], 5: [0.1], 6: [0.3]}
    straight = MetricTrigger(config)
    _feed(straight, history)

    first = MetricTrigger(config)
    _feed(first, {k: v for k, v in history.items() if k <= 2})
    saved = json.loads(json.dumps(first.state_dict()))  # must survive JSON (checkpoint metadata)
    resumed = MetricTrigger(config)
    resumed.load_state_dict(saved)
    _feed(resumed, {k: v for k, v in history.items() if k > 2})

    assert straight.fired_step is not None
    assert resumed.fired_step == straight.fired_step
    assert resumed.state_dict() == straight.state_dict()


def test_trigger_state_from_another_config_is_refused() -> None:
    saved = MetricTrigger(TriggerConfig(threshold=0.5)).state_dict()
    with pytest.raises(CheckpointError, match="trigger"):
        MetricTrigger(TriggerConfig(threshold=0.7)).load_state_dict(saved)
    with pytest.raises(CheckpointError, match="malformed"):
        MetricTrigger(TriggerConfig()).load_state_dict({"fired_step": 1})


def test_trigger_holds_the_schedule_until_it_fires() -> None:
    config = RewardConfig.tool_zero(
        schedule=ScheduleConfig("linear", 0, 10), trigger=TriggerConfig(metric="format", threshold=0.5, window=1)
    )
    fn = RewardFn(config)
    assert fn.coefficients(50)["ast.weight"] == 0.0  # not fired: waits at the start whatever t is
    fn.trigger.observe(50, [1.0])  # type: ignore[union-attr]
    fn.trigger.observe(51, [1.0])  # type: ignore[union-attr]  # completes step 50 -> fires at 50
    assert fn.coefficients(50)["ast.weight"] == 0.0
    assert fn.coefficients(55)["ast.weight"] == pytest.approx(0.5)
    assert fn.coefficients(55)["format.weight"] == pytest.approx(0.5)
    assert fn.coefficients(60)["ast.weight"] == 1.0
    assert fn.coefficients(60)["trigger_fired"] == 1.0


# ---------------------------------------------------------------------- ToolRL SCHEDULEREWARD


def _toolrl_reference(t: int) -> dict[str, float]:
    """rlla.py with SCHEDULEREWARD=1 and the defaults of `compute_score` (format [0, 1], tool [-3, 3]),
    transcribed formula by formula."""
    fmt_max = 2 - (2 - 1.0) * t / 150
    fmt_min = -2 + (2 + 0.0) * t / 150
    fmt_max, fmt_min = max(fmt_max, 1.0), min(fmt_min, -1.0)
    cor_max = (3.0 - 2) * t / 150 + 2
    cor_min = (-3.0 + 2) * t / 150 - 2
    cor_max, cor_min = min(cor_max, 3.0), max(cor_min, -3.0)
    return {"format.high": fmt_max, "format.low": fmt_min, "partial.high": cor_max, "partial.low": cor_min}


@pytest.mark.parametrize("t", [0, 30, 75, 100, 150, 300])
def test_toolrl_schedule_reproduced(t: int) -> None:
    coefs = RewardFn(RewardConfig.toolrl_scheduled()).coefficients(t)
    for key, value in _toolrl_reference(t).items():
        assert coefs[key] == pytest.approx(value, abs=1e-12), key
    assert coefs["format.weight"] == coefs["partial.weight"] == 1.0


def test_toolrl_schedule_named_points() -> None:
    # the values quoted in ANCHORS.md, so a change to the reference above is caught too
    got = {t: RewardFn(RewardConfig.toolrl_scheduled()).coefficients(t) for t in (0, 75, 150, 300)}
    assert [got[t]["format.high"] for t in (0, 75, 150, 300)] == [2.0, 1.5, 1.0, 1.0]
    assert [got[t]["format.low"] for t in (0, 75, 150, 300)] == [-2.0, -1.0, -1.0, -1.0]
    assert [got[t]["partial.high"] for t in (0, 75, 150, 300)] == [2.0, 2.5, 3.0, 3.0]
    assert [got[t]["partial.low"] for t in (0, 75, 150, 300)] == [-2.0, -2.5, -3.0, -3.0]


def test_toolrl_max1step30max3_as_a_step_schedule() -> None:
    # rlla.py MAX1STEP30MAX3: correctness range [-1, 1] before step 30, [-3, 3] from step 30 on
    step30 = ScheduleConfig("step", 0, 30)
    config = RewardConfig(
        partial=TermConfig(enabled=True, low=Ramp(-1.0, -3.0), high=Ramp(1.0, 3.0)), schedule=step30
    )
    fn = RewardFn(config)
    assert (fn.coefficients(29)["partial.low"], fn.coefficients(29)["partial.high"]) == (-1.0, 1.0)
    assert (fn.coefficients(30)["partial.low"], fn.coefficients(30)["partial.high"]) == (-3.0, 3.0)
