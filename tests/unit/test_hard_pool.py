"""The hard-sample pool and the sampler, driven by a scripted reward."""

import json

import pytest

from megatron_toolrl.errors import ConfigError
from megatron_toolrl.grpo.hard_pool import HardSamplePool, HardSamplingConfig
from megatron_toolrl.train.sampler import TaskSampler


def make_pool(**kw):
    return HardSamplePool(HardSamplingConfig(enabled=True, **kw))


def test_hard_after_judge_rollouts_accumulated_across_steps():
    pool = make_pool(judge_rollouts=10)
    assert pool.observe("t", 8, 0) is None          # 8 < 10 rollouts: no verdict yet
    assert pool.shots_for("t") == 0
    assert pool.observe("t", 8, 0) == "became_hard"  # 16 >= 10 with none correct
    assert pool.round_of("t") == 1 and pool.shots_for("t") == 2


def test_rounds_grow_shots_then_retire():
    pool = make_pool(judge_rollouts=4, max_rounds=3, shots_first_round=1, shots_per_round_increase=2, max_shots=4)
    events = [pool.observe("t", 4, 0) for _ in range(4)]
    assert events == ["became_hard", "next_round", "next_round", "retired"]
    assert pool.is_retired("t") and pool.shots_for("t") == 0
    assert pool.observe("t", 4, 1) is None  # retired prompts are not tracked further
    c = pool.counts()
    assert c["retired"] == 1 and c["in_pool"] == 0
    assert c["total_became_hard"] == 1 and c["total_next_round"] == 2 and c["total_retired"] == 1
    # shots per round: 1, 3, then capped at 4
    assert [pool.config.shots(r) for r in (0, 1, 2, 3)] == [0, 1, 3, 4]


def test_correct_rollout_graduates_and_resets():
    pool = make_pool(judge_rollouts=4)
    pool.observe("t", 4, 0)
    assert pool.round_of("t") == 1
    assert pool.observe("t", 4, 1) == "graduated"
    assert pool.round_of("t") == 0 and pool.shots_for("t") == 0 and "t" not in pool.trackers
    # a prompt that is right from the start never enters the pool
    assert pool.observe("easy", 4, 2) is None and pool.counts()["in_pool"] == 0


def test_disabled_pool_does_nothing():
    pool = HardSamplePool(HardSamplingConfig(enabled=False))
    assert pool.observe("t", 100, 0) is None and pool.shots_for("t") == 0


def test_state_survives_a_json_round_trip_and_continues_identically():
    a, b = make_pool(judge_rollouts=4), make_pool(judge_rollouts=4)
    script = [("x", 4, 0), ("y", 2, 0), ("x", 4, 0), ("y", 2, 0), ("z", 4, 1)]
    for step in script[:3]:
        a.observe(*step)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    rest_a = [a.observe(*s) for s in script[3:]]
    rest_b = [b.observe(*s) for s in script[3:]]
    assert rest_a == rest_b and a.counts() == b.counts() and a.state_dict() == b.state_dict()


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="hard_sampling.judge_rollouts"):
        HardSamplingConfig(judge_rollouts=0)
    with pytest.raises(ConfigError, match="shots_first_round"):
        HardSamplingConfig(shots_first_round=5, max_shots=4)


def test_sampler_epochs_requeue_and_resume():
    s = TaskSampler(num_tasks=5, prompts_per_step=2, seed=7)
    seen = [i for _ in range(5) for i in s.next_batch()]
    assert sorted(seen[:5]) == [0, 1, 2, 3, 4]        # the first epoch covers every prompt once
    s.requeue(3)
    s.requeue(3)
    batch = s.next_batch()
    assert batch[0] == 3 and len(set(batch)) == 2
    state = json.loads(json.dumps(s.state_dict()))
    r = TaskSampler(num_tasks=5, prompts_per_step=2, seed=7)
    r.load_state_dict(state)
    assert [s.next_batch() for _ in range(6)] == [r.next_batch() for _ in range(6)]


def test_sampler_skips_retired_and_fails_when_nothing_left():
    s = TaskSampler(num_tasks=4, prompts_per_step=2, seed=0)
    for _ in range(6):
        assert all(i != 1 for i in s.next_batch(skip=lambda i: i == 1))
    with pytest.raises(RuntimeError, match="nothing left"):
        s.next_batch(skip=lambda i: True)
