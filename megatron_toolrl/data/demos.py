"""A pool of solved tasks to show as few-shot demonstrations (ToolExpander's hard-sample substitution).

`DemoPool.select(task, k, rng)` ranks demonstrations by (1) how many of the task's tools they
call, (2) how closely their tool list matches the task's (Jaccard overlap: a demonstration of
the same tool set needs no extra tool listing and keeps the prompt short), (3) same category,
(4) same domain; unrelated demonstrations come last. Ties are broken at random with `rng`.
It never returns the task itself (same id), a demonstration with the same question, or one whose
answer equals the task's reference answer: a demonstration must not hand the model the solution
it is being trained to find.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Iterable

from megatron_toolrl.data.task import ToolCall, ToolTask


@dataclass(frozen=True)
class Demo:
    """A solved task: the task and a correct answer (no calls for an irrelevance task)."""

    task: ToolTask
    calls: list[ToolCall] = field(default_factory=list)

    @property
    def question(self) -> str:
        """The user request the demonstration answers (its last user message)."""
        return last_user_text(self.task)


def last_user_text(task: ToolTask) -> str:
    for message in reversed(task.messages):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


def answer_key(calls: Iterable[ToolCall]) -> tuple[str, ...]:
    """An order-free fingerprint of an answer (calls compare as a multiset, like BFCL's parallel check)."""
    return tuple(sorted(json.dumps(c.to_json(), sort_keys=True, ensure_ascii=False) for c in calls))


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


class DemoPool:
    """Demonstrations indexed by the tool names they call and by domain."""

    def __init__(self, demos: Iterable[Demo]):
        self.demos: list[Demo] = list(demos)
        self._by_called: dict[str, list[int]] = {}
        self._by_offered: dict[str, list[int]] = {}
        self._by_domain: dict[str, list[int]] = {}
        for i, demo in enumerate(self.demos):
            for name in {c.name for c in demo.calls}:
                self._by_called.setdefault(name, []).append(i)
            for name in set(demo.task.tool_names):
                self._by_offered.setdefault(name, []).append(i)
            if demo.task.domain:
                self._by_domain.setdefault(demo.task.domain, []).append(i)

    @classmethod
    def from_tasks(cls, tasks: Iterable[ToolTask]) -> "DemoPool":
        """A pool answering each task with its reference answer (its ground truth, first values)."""
        return cls(Demo(task, task.reference_answer()) for task in tasks)

    def __len__(self) -> int:
        return len(self.demos)

    def select(self, task: ToolTask, k: int, rng: random.Random) -> list[Demo]:
        """Up to `k` demonstrations for `task`, most similar first (see module docstring)."""
        if k <= 0 or not self.demos:
            return []
        names = set(task.tool_names)
        question = _normalized(last_user_text(task))
        answer = answer_key(task.reference_answer())

        def allowed(demo: Demo) -> bool:
            if demo.task.id == task.id or _normalized(demo.question) == question:
                return False
            return not (answer and answer_key(demo.calls) == answer)

        scores: dict[int, tuple[int, float, int, int]] = {}
        related = [self._by_called.get(n, ()) for n in names] + [self._by_offered.get(n, ()) for n in names]
        related.append(self._by_domain.get(task.domain, ()) if task.domain else ())
        for indices in related:
            for i in indices:
                if i not in scores:
                    scores[i] = self._score(i, names, task)
        ranked = sorted(scores, key=lambda i: (scores[i], rng.random()), reverse=True)
        chosen = [self.demos[i] for i in ranked if allowed(self.demos[i])][:k]
        if len(chosen) < k:
            # Fill with unrelated demonstrations, in random order.
            rest = [i for i in range(len(self.demos)) if i not in scores]
            rng.shuffle(rest)
            for i in rest:
                if len(chosen) == k:
                    break
                if allowed(self.demos[i]):
                    chosen.append(self.demos[i])
        return chosen

    def _score(self, i: int, names: set[str], task: ToolTask) -> tuple[int, float, int, int]:
        demo = self.demos[i]
        called = len({c.name for c in demo.calls} & names)
        offered = set(demo.task.tool_names)
        jaccard = len(offered & names) / len(offered | names) if offered | names else 0.0
        same_category = int(demo.task.category == task.category)
        return called, jaccard, same_category, int(bool(task.domain) and demo.task.domain == task.domain)
