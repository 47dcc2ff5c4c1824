"""Demonstration selection (DemoPool) and irrelevance augmentation."""

from __future__ import annotations

import random

from megatron_toolrl.data.augment import irrelevance_variants
from megatron_toolrl.data.demos import Demo, DemoPool, answer_key
from megatron_toolrl.data.synthetic import generate_tasks
from megatron_toolrl.data.task import GroundTruthCall, ToolCall, ToolTask

WEATHER = {
    "name": "get_weather",
    "description": "",
    "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
FORECAST = {
    "name": "get_forecast",
    "description": "",
    "parameters": {"type": "dict", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
QUOTE = {
    "name": "get_quote",
    "description": "",
    "parameters": {"type": "dict", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]},
}


def _task(task_id, question, tools, calls, domain):
    category = "single" if len(tools) == 1 else "multiple"
    return ToolTask(
        task_id,
        [{"role": "user", "content": question}],
        tools,
        [GroundTruthCall(c.name, {k: [v] for k, v in c.arguments.items()}) for c in calls],
        category,
        domain=domain,
    )


def test_ranking_same_tools_then_domain_then_others():
    target = _task("t", "Weather in Oslo?", [WEATHER], [ToolCall("get_weather", {"city": "Oslo"})], "weather")
    same_tool = _task("a", "Weather in Rome?", [WEATHER], [ToolCall("get_weather", {"city": "Rome"})], "weather")
    same_domain = _task("b", "Forecast for Lima?", [FORECAST], [ToolCall("get_forecast", {"city": "Lima"})], "weather")
    other = _task("c", "Quote for IBM?", [QUOTE], [ToolCall("get_quote", {"symbol": "IBM"})], "finance")
    pool = DemoPool.from_tasks([other, same_domain, same_tool])
    for seed in range(5):
        assert [d.task.id for d in pool.select(target, 3, random.Random(seed))] == ["a", "b", "c"]
    assert [d.task.id for d in pool.select(target, 1, random.Random(0))] == ["a"]
    assert pool.select(target, 0, random.Random(0)) == []


def test_never_the_task_itself_its_question_or_its_answer():
    target = _task("t", "Weather in Oslo?", [WEATHER], [ToolCall("get_weather", {"city": "Oslo"})], "weather")
    itself = target
    same_question = _task(
        "q", "  weather in OSLO? ", [WEATHER], [ToolCall("get_weather", {"city": "Bergen"})], "weather"
    )
    same_answer = _task(
        "s", "How is Oslo's weather today?", [WEATHER], [ToolCall("get_weather", {"city": "Oslo"})], "weather"
    )
    fine = _task("f", "Weather in Rome?", [WEATHER], [ToolCall("get_weather", {"city": "Rome"})], "weather")
    pool = DemoPool.from_tasks([itself, same_question, same_answer, fine])
    assert [d.task.id for d in pool.select(target, 4, random.Random(0))] == ["f"]


def test_select_on_generated_tasks():
    pool_tasks = generate_tasks(800, seed=21)
    pool = DemoPool.from_tasks(pool_tasks)
    assert len(pool) == 800
    for task in pool_tasks[:150] + generate_tasks(50, seed=22):
        demos = pool.select(task, 3, random.Random(task.id))
        assert len(demos) == 3
        assert pool.select(task, 3, random.Random(task.id)) == demos  # same rng state, same choice
        own = answer_key(task.reference_answer())
        question = task.messages[-1]["content"]
        for demo in demos:
            assert demo.task.id != task.id and demo.question != question
            assert not own or answer_key(demo.calls) != own
            assert demo.calls == demo.task.reference_answer()
        if task.ground_truth:
            # With 800 tasks over 44 functions there is always a demonstration calling one of the task's tools.
            assert {c.name for c in demos[0].calls} & set(task.tool_names)


def test_demo_question_is_the_last_user_turn():
    task = ToolTask(
        "h",
        [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "second"},
        ],
        [WEATHER],
        [],
        "irrelevance",
    )
    assert Demo(task).question == "second"


def test_irrelevance_variants_drop_the_called_tools():
    tasks = generate_tasks(400, seed=8, irrelevance_rate=0.0)
    variants = irrelevance_variants(tasks, rate=0.15, seed=1)
    assert 0.08 * len(tasks) < len(variants) < 0.22 * len(tasks)
    assert irrelevance_variants(tasks, rate=0.15, seed=1) == variants
    originals = {t.id: t for t in tasks}
    for variant in variants:
        source = originals[variant.meta["augmented_from"]]
        assert variant.id == f"{source.id}-irrelevant" and variant.category == "irrelevance"
        assert variant.messages == source.messages and variant.tools
        assert not {g.name for g in source.ground_truth} & set(variant.tool_names)
    assert irrelevance_variants(tasks, rate=0.0, seed=1) == []
