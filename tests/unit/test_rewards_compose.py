"""Composition: components sum to the reward, every raw score is kept, presets behave as their
papers' formulas over training, and the reward state survives a checkpoint round trip."""

from __future__ import annotations

import json
import time

import pytest

from megatron_toolrl.data.task import GroundTruthCall, ToolCall, ToolTask
from megatron_toolrl.errors import CheckpointError
from megatron_toolrl.rewards import RewardConfig, RewardFn, ScheduleConfig, TriggerConfig
from megatron_toolrl.toolcall import render_calls
from megatron_toolrl.toolcall.types import OutputFormat, ParseLimits

F = OutputFormat
LIMITS = ParseLimits(max_seconds=10.0)  # no wall-clock flakiness on a loaded machine
TOOLS = [
    {
        "name": "convert",
        "description": "Convert an amount between currencies.",
        "parameters": {
            "type": "dict",
            "properties": {"amount": {"type": "float"}, "src": {"type": "string"}, "dst": {"type": "string"}},
            "required": ["amount", "src", "dst"],
        },
    }
]
GT = [GroundTruthCall("convert", {"amount": [10.0], "src": ["USD"], "dst": ["EUR"]})]
TASK = ToolTask("c", [{"role": "user", "content": "10 USD in EUR?"}], TOOLS, GT, "single")
IRR = ToolTask("i", [{"role": "user", "content": "Tell me a joke"}], TOOLS, [], "irrelevance")


def think(body: str) -> str:
    return f"<think>The user wants a conversion.</think>\n{body}"


EXACT = think(render_calls([ToolCall("convert", {"amount": 10, "src": "USD", "dst": "EUR"})], F.JSON_LINES))
# one value wrong: names J = 1; params J = 1, right values 2 -> S = 1 + 1 + 2 = 4, S_max = 1 + 4 = 5
HALF = think(render_calls([ToolCall("convert", {"amount": 10, "src": "USD", "dst": "GBP"})], F.JSON_LINES))
MALFORMED = think('<tool_call>\n{"name": "convert", "parameters": {"amount": 10,\n</tool_call>')
PLAIN = "<think>No tool tells jokes.</think>\nWhy did the chicken cross the road?"
TEXTS = [EXACT, HALF, MALFORMED, PLAIN]
TASKS = [TASK, TASK, TASK, IRR]


def test_components_sum_to_reward_and_all_scores_are_kept() -> None:
    fn = RewardFn(limits=LIMITS, config=RewardConfig.toolrl())
    batch = fn.compute_rewards(TASKS, TEXTS, step=0, fmt=F.JSON_LINES)
    assert set(batch.components) == {"format", "partial"}  # enabled terms only
    assert set(batch.scores) == {"format", "partial", "binary", "ast"}  # every raw score
    for i, r in enumerate(batch.rewards):
        assert r == pytest.approx(sum(v[i] for v in batch.components.values()))
    assert batch.scores["partial"] == [1.0, pytest.approx(4 / 5), 0.0, 1.0]
    assert batch.scores["format"] == [1.0, 1.0, 0.0, 1.0]
    assert batch.scores["binary"] == [1.0, 0.0, 0.0, 1.0]
    assert batch.scores["ast"] == [1.0, 0.0, 0.0, 1.0]
    # ToolRL default: format {0,1} + partial [-3,3]
    assert batch.rewards == [4.0, pytest.approx(1 + (-3 + 6 * 0.8)), -3.0, 4.0]
    assert batch.correct == [True, False, False, True]
    assert len(batch.parses) == 4 and batch.parses[2].error is not None
    metrics = batch.metrics()
    assert metrics["reward/mean"] == pytest.approx(sum(batch.rewards) / 4)
    assert metrics["reward/score/format"] == 0.75
    assert metrics["reward/coef/partial.low"] == -3.0


@pytest.mark.parametrize("t", [0, 75, 150, 300])
def test_toolrl_scheduled_totals_follow_rlla(t: int) -> None:
    # rlla.py: format in {fmt_min, fmt_max}; correctness = (max - min) * S / S_max + min, or max on exact,
    # or min on a parse failure. Bounds transcribed from the SCHEDULEREWARD branch.
    fmt_max, fmt_min = max(1.0, 2 - t / 150), min(-1.0, -2 + 2 * t / 150)
    cor_max, cor_min = min(3.0, 2 + t / 150), max(-3.0, -2 - t / 150)
    fn = RewardFn(limits=LIMITS, config=RewardConfig.toolrl_scheduled())
    batch = fn.compute_rewards(TASKS[:3], TEXTS[:3], step=t, fmt=F.JSON_LINES)
    assert batch.rewards[0] == pytest.approx(fmt_max + cor_max)
    assert batch.rewards[1] == pytest.approx(fmt_max + (cor_max - cor_min) * 4 / 5 + cor_min)
    assert batch.rewards[2] == pytest.approx(fmt_min + cor_min)


def test_tool_zero_moves_from_exploratory_to_strict() -> None:
    fn = RewardFn(limits=LIMITS, config=RewardConfig.tool_zero(schedule=ScheduleConfig("linear", 10, 20)))
    start = fn.compute_rewards([TASK], [HALF], step=0, fmt=F.JSON_LINES)
    mid = fn.compute_rewards([TASK], [HALF], step=15, fmt=F.JSON_LINES)
    end = fn.compute_rewards([TASK], [HALF], step=25, fmt=F.JSON_LINES)
    # HALF: format 1, partial 0.8, ast 0
    assert start.rewards == [pytest.approx(1.8)] and start.components["ast"] == [0.0]
    assert mid.rewards == [pytest.approx(0.9)]
    assert end.rewards == [0.0] and end.components["format"] == [0.0]
    exact_end = fn.compute_rewards([TASK], [EXACT], step=25, fmt=F.JSON_LINES)
    assert exact_end.rewards == [1.0]


def test_trigger_is_fed_by_compute_rewards_and_survives_a_checkpoint() -> None:
    config = RewardConfig.tool_zero(
        schedule=ScheduleConfig("linear", 0, 4), trigger=TriggerConfig(metric="format", threshold=0.6, window=2)
    )
    # format pass per step: 0.5, 1.0, 1.0 ... -> window over steps 0-1 = 0.75 > 0.6: fires at step 1
    steps = [(0, [EXACT, MALFORMED]), (1, [EXACT, EXACT]), (2, [HALF, HALF]), (3, [HALF, HALF]), (4, [HALF])]
    steps.append((5, [HALF]))

    def run(fn: RewardFn, part: list) -> list[float]:
        out = []
        for step, texts in part:
            out += fn.compute_rewards([TASK] * len(texts), texts, step, F.JSON_LINES).rewards
        return out

    straight = RewardFn(limits=LIMITS, config=config)
    expected = run(straight, steps)
    assert straight.trigger is not None and straight.trigger.fired_step == 1

    first = RewardFn(limits=LIMITS, config=config)
    got = run(first, steps[:3])
    state = json.loads(json.dumps(first.state_dict()))
    resumed = RewardFn(limits=LIMITS, config=config)
    resumed.load_state_dict(state)
    got += run(resumed, steps[3:])
    assert got == expected
    # step 1 completes (and fires) when step 2 begins, before step 2 is scored; the window is then
    # steps 1-5. HALF (format 1, partial 0.8, ast 0) at step 2: ast weight 0.25 -> 0.75 * 1.8 = 1.35;
    # at step 3: 0.5 * 1.8 = 0.9. Before firing (steps 0, 1) the weights wait at the start.
    assert expected[:2] == [pytest.approx(2.0), pytest.approx(0.0)]  # EXACT 1 + 1; MALFORMED 0 + 0
    assert expected[4] == pytest.approx(1.35)
    assert expected[6] == pytest.approx(0.9)


def test_state_from_a_run_without_trigger_is_refused() -> None:
    with_trigger = RewardFn(limits=LIMITS, config=RewardConfig.tool_zero(trigger=TriggerConfig()))
    with pytest.raises(CheckpointError):
        with_trigger.load_state_dict(RewardFn(limits=LIMITS, config=RewardConfig.tool_zero()).state_dict())


def test_evaluation_batches_can_leave_the_trigger_alone() -> None:
    fn = RewardFn(limits=LIMITS, config=RewardConfig.tool_zero(trigger=TriggerConfig(threshold=0.1, window=1)))
    fn.compute_rewards([TASK], [EXACT], 0, F.JSON_LINES, update_trigger=False)
    fn.compute_rewards([TASK], [EXACT], 1, F.JSON_LINES, update_trigger=False)
    assert fn.trigger is not None and fn.trigger.state_dict()["window"] == []


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="2 tasks but 1 texts"):
        RewardFn(limits=LIMITS, config=RewardConfig()).compute_rewards([TASK, TASK], [EXACT], 0, F.JSON_LINES)


def test_reward_is_fast() -> None:
    # a GRPO batch of 512 answers must not be a bottleneck next to generation (seconds per step)
    fn = RewardFn(limits=LIMITS, config=RewardConfig.toolexpander())
    texts = TEXTS * 128
    start = time.perf_counter()
    fn.compute_rewards(TASKS * 128, texts, 0, F.JSON_LINES)
    assert time.perf_counter() - start < 2.0
