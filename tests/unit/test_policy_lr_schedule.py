"""LR schedules (pure functions; no megatron): warmup, constant, cosine, exponential, state."""

from __future__ import annotations

import math

import pytest

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.policy.lr_schedule import LRScheduleConfig, LRScheduler, lr_at


def test_linear_warmup_then_exponential_decay() -> None:
    cfg = LRScheduleConfig(style="exponential", warmup_steps=4, gamma=0.9)
    got = [lr_at(s, 1e-3, cfg) for s in range(8)]
    # Independent computation of the documented rule: lr0*(s+1)/W, then lr0*gamma^(s-W).
    expected = [1e-3 * (s + 1) / 4 for s in range(4)] + [1e-3 * 0.9**k for k in range(4)]
    assert got == pytest.approx(expected, rel=1e-12)


def test_exponential_decay_is_floored_at_min_lr() -> None:
    cfg = LRScheduleConfig(style="exponential", gamma=0.5, min_lr=1e-4)
    assert lr_at(10, 1e-3, cfg) == 1e-4
    assert lr_at(1, 1e-3, cfg) == pytest.approx(5e-4)


def test_cosine_reaches_min_lr_and_stays() -> None:
    cfg = LRScheduleConfig(style="cosine", warmup_steps=0, decay_steps=10, min_lr=1e-5)
    assert lr_at(0, 1e-3, cfg) == pytest.approx(1e-3)
    assert lr_at(5, 1e-3, cfg) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + math.cos(math.pi / 2)))
    assert lr_at(10, 1e-3, cfg) == pytest.approx(1e-5)
    assert lr_at(50, 1e-3, cfg) == pytest.approx(1e-5)


def test_constant_after_warmup() -> None:
    cfg = LRScheduleConfig(warmup_steps=2)
    assert [lr_at(s, 2.0, cfg) for s in range(4)] == [1.0, 2.0, 2.0, 2.0]


def test_scheduler_sets_groups_and_round_trips_its_state() -> None:
    cfg = LRScheduleConfig(style="exponential", gamma=0.5)
    sched = LRScheduler(cfg, peak_lr=1.0, weight_decay=0.1)
    groups = [{"wd_mult": 1.0}, {"wd_mult": 0.0, "lr_mult": 1.0}]
    assert sched.apply(groups) == 1.0
    sched.advance()
    sched.advance()
    assert sched.apply(groups) == 0.25
    assert [g["lr"] for g in groups] == [0.25, 0.25]
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]  # biases/norms get no decay
    restored = LRScheduler(cfg, peak_lr=1.0, weight_decay=0.1)
    restored.load_state_dict(sched.state_dict())
    assert restored.current_lr == sched.current_lr == 0.25


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"style": "linear"}, "lr_schedule.style"),
        ({"warmup_steps": -1}, "lr_schedule.warmup_steps"),
        ({"style": "exponential", "gamma": 1.5}, "lr_schedule.gamma"),
        ({"style": "exponential", "gamma": 0.0}, "lr_schedule.gamma"),
        ({"style": "cosine"}, "lr_schedule.decay_steps"),
        ({"min_lr": -1.0}, "lr_schedule.min_lr"),
    ],
)
def test_bad_schedule_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        LRScheduleConfig(**kwargs)
    assert err.value.field == field
