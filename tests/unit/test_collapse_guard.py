"""The collapse guard: what counts as a collapse, and that its state survives a checkpoint."""

import json

from megatron_toolrl.train.config import GuardConfig
from megatron_toolrl.train.state import CollapseGuard


def healthy(step: int) -> dict:
    return {"loss/total": 0.1, "optim/grad_norm": 1.0 + 0.01 * step, "reward/mean": 1.0, "policy/entropy": 1.5}


def test_nan_loss_and_grad_norm_spike_are_collapses():
    guard = CollapseGuard(GuardConfig(grad_norm_spike=20.0))
    for step in range(5):
        assert guard.check(healthy(step)) is None
    assert "non-finite" in guard.check({**healthy(5), "loss/total": float("nan")})
    assert "spike" in guard.check({**healthy(5), "optim/grad_norm": 50.0})
    assert guard.check({**healthy(5), "optim/grad_norm": 5.0}) is None  # 5x the median is not a spike


def test_reward_collapse_needs_a_sustained_drop_below_the_best_average():
    guard = CollapseGuard(GuardConfig(reward_collapse_fraction=0.5))
    for step in range(5):
        assert guard.check(healthy(step)) is None          # best 5-step average: 1.0
    reasons = [guard.check({**healthy(5 + i), "reward/mean": 0.2}) for i in range(6)]
    # the running average falls below 0.5 only after enough low steps have entered the window
    assert reasons[0] is None and any(r and "reward collapse" in r for r in reasons)


def test_entropy_floor_is_optional():
    assert CollapseGuard(GuardConfig(min_entropy=0.0)).check({**healthy(0), "policy/entropy": 0.001}) is None
    assert "entropy" in CollapseGuard(GuardConfig(min_entropy=0.05)).check({**healthy(0), "policy/entropy": 0.001})


def test_disabled_guard_and_skipped_steps_pass():
    assert CollapseGuard(GuardConfig(enabled=False)).check({**healthy(0), "loss/total": float("nan")}) is None
    assert CollapseGuard(GuardConfig()).check({"train/skipped": 1.0, "loss/total": float("nan")}) is None


def test_state_round_trip():
    a = CollapseGuard(GuardConfig())
    for step in range(7):
        a.check(healthy(step))
    a.rollbacks = 2
    b = CollapseGuard(GuardConfig())
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert b.state_dict() == a.state_dict()
    probe = {**healthy(9), "optim/grad_norm": 30.0}
    assert a.check(dict(probe)) == b.check(dict(probe))
