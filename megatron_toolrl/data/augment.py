"""Irrelevance augmentation of loaded datasets (Nemotron-Tool-N1's recipe, sample rate 0.15).

A sampled fraction of the tasks that have calls get a variant whose tool list lacks every tool
the answer calls, so the correct answer becomes "no call". When nothing would be left, tools of a
task from another domain (or with no shared tool name) are shown instead. The originals are
kept: the variants are returned as new tasks (`<id>-irrelevant`), never silently replacing data.
"""

from __future__ import annotations

import random
from typing import Sequence

from megatron_toolrl.data.task import ToolTask

_MAX_TRIES = 20
"""Random donor tasks tried when a variant needs borrowed tools."""


def irrelevance_variants(tasks: Sequence[ToolTask], rate: float, seed: int) -> list[ToolTask]:
    """New irrelevance tasks made from about `rate` of the tasks with calls (see module docstring).

    Tasks whose history already calls a removed tool are not used (the history would then name
    a tool the prompt no longer shows).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    rng = random.Random(seed)
    with_calls = [t for t in tasks if t.ground_truth]
    variants = []
    for task in with_calls:
        if rng.random() >= rate:
            continue
        called = {gt.name for gt in task.ground_truth}
        if any(c.get("name") in called for m in task.messages for c in m.get("tool_calls") or ()):
            continue
        tools = [t for t in task.tools if t["name"] not in called]
        if not tools:
            tools = _borrowed_tools(task, called, with_calls, rng)
        if not tools:
            continue
        variants.append(
            ToolTask(
                id=f"{task.id}-irrelevant",
                messages=[dict(m) for m in task.messages],
                tools=tools,
                ground_truth=[],
                category="irrelevance",
                domain=task.domain,
                source=task.source,
                meta={**task.meta, "augmented_from": task.id},
            )
        )
    return variants


def _borrowed_tools(task: ToolTask, called: set[str], pool: Sequence[ToolTask], rng: random.Random) -> list[dict]:
    for _ in range(_MAX_TRIES):
        donor = rng.choice(pool)
        if donor.id == task.id or (task.domain and donor.domain == task.domain):
            continue
        tools = [t for t in donor.tools if t["name"] not in called]
        if tools and len(tools) == len(donor.tools):
            return [dict(t) for t in tools]
    return []
