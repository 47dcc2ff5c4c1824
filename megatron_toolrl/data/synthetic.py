"""Seeded synthetic tool-calling tasks (the catalogue is in `synth_catalog`).

Each task shows 1-4 tools and a user request whose every argument value is written in the text
(several phrasings per function, optional arguments stated by their own sentences), so the
ground truth can be read off the query exactly. Categories follow BFCL: single, multiple,
parallel, parallel_multiple, plus irrelevance tasks at `irrelevance_rate` (Tool-N1 used 15%),
where the request belongs to a domain none of the offered tools covers.

Task i of seed s is drawn from its own `random.Random(f"{s}:{i}")`, so the same seed gives the same
tasks, `generate_tasks(n)[:k] == generate_tasks(k)`, and different seeds give different tasks.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from megatron_toolrl.data.synth_catalog import CATALOG, DOMAINS
from megatron_toolrl.data.synth_spec import NO_DEFAULT, CallDraft, Function
from megatron_toolrl.data.task import Category, GroundTruthCall, ToolTask

CALL_CATEGORIES: tuple[Category, ...] = ("single", "multiple", "parallel", "parallel_multiple")
"""Categories with at least one call (irrelevance is set by `irrelevance_rate`)."""

_CONNECTORS = ("Also,", "Then,", "After that,", "Additionally,", "And")
_ORDINALS = ("First,", "Second,", "Third,", "Fourth,")
_MAX_RETRIES = 50
"""Draws tried before giving up on a constraint (distinct values, distinct calls); never reached
with the shipped catalogue, but it bounds the loop if a custom catalogue makes it impossible."""


def generate_tasks(
    n: int,
    seed: int,
    categories: Sequence[Category] = CALL_CATEGORIES,
    irrelevance_rate: float = 0.15,
    domains: Sequence[str] | None = None,
    max_tools: int = 4,
    max_calls: int = 3,
    optional_rate: float = 0.5,
    catalog: Sequence[Function] = CATALOG,
) -> list[ToolTask]:
    """`n` tasks drawn with `seed`.

    categories:       call categories drawn uniformly for the non-irrelevance tasks.
    irrelevance_rate: fraction of irrelevance tasks (expected value; each task flips a coin).
    domains:          restrict tools and requests to these catalogue domains (None = all).
    max_tools:        most tools shown in one task (>= 2 when multiple/parallel_multiple are drawn).
    max_calls:        most calls in a parallel / parallel_multiple answer (>= 2).
    optional_rate:    chance that the request states each optional argument.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= irrelevance_rate <= 1.0:
        raise ValueError(f"irrelevance_rate must be in [0, 1], got {irrelevance_rate}")
    if not 0.0 <= optional_rate <= 1.0:
        raise ValueError(f"optional_rate must be in [0, 1], got {optional_rate}")
    unknown = [c for c in categories if c not in CALL_CATEGORIES]
    if unknown or (not categories and irrelevance_rate < 1.0):
        raise ValueError(
            f"categories must be a non-empty subset of {CALL_CATEGORIES} "
            f"(irrelevance is set by irrelevance_rate), got {list(categories)}"
        )
    if max_calls < 2 or max_tools < 1:
        raise ValueError("max_calls must be >= 2 and max_tools >= 1")
    if max_tools < 2 and any(c in ("multiple", "parallel_multiple") for c in categories):
        raise ValueError("multiple and parallel_multiple need max_tools >= 2")
    functions = [f for f in catalog if domains is None or f.domain in domains]
    if domains is not None and (missing := sorted(set(domains) - {f.domain for f in catalog})):
        raise ValueError(f"unknown domains {missing}; known: {sorted({f.domain for f in catalog})}")
    if irrelevance_rate > 0 and len({f.domain for f in functions}) < 2:
        raise ValueError("irrelevance tasks need functions from at least two domains")
    tasks = []
    for i in range(n):
        rng = random.Random(f"{seed}:{i}")
        if rng.random() < irrelevance_rate:
            tasks.append(_irrelevance_task(rng, functions, max_tools, optional_rate, f"synth-{seed}-{i}"))
        else:
            category = rng.choice(list(categories))
            tasks.append(_call_task(rng, category, functions, max_tools, max_calls, optional_rate, f"synth-{seed}-{i}"))
    return tasks


def draft_call(function: Function, rng: random.Random, optional_rate: float = 0.5) -> CallDraft:
    """A request sentence for `function` and its ground truth; stated values are distinct words."""
    for _ in range(_MAX_RETRIES):
        template = rng.choice(function.templates)
        draft = CallDraft(function, "")
        clauses: list[str] = []
        texts: dict[str, str] = {}
        for param in function.params:
            if not param.optional:
                drawn = param.draw(rng)
                texts[param.name] = drawn.text
                draft.arguments[param.name] = list(drawn.accepted)
                draft.stated[param.name] = drawn.text
                continue
            fallback = ([] if param.default is NO_DEFAULT else [param.default]) + [""]
            if rng.random() >= optional_rate:
                draft.arguments[param.name] = fallback
                continue
            if param.type == "boolean":
                value = rng.random() < 0.5
                clauses.append(rng.choice(param.bool_clauses[int(value)]))
                accepted: list[Any] = [value]
                stated_value: Any = value
            else:
                drawn = param.draw(rng)
                clauses.append(rng.choice(param.clauses).format(v=drawn.text))
                draft.stated[param.name] = drawn.text
                accepted = list(drawn.accepted)
                stated_value = drawn.value
            # Stating the default is also satisfied by leaving the argument out.
            draft.arguments[param.name] = accepted + ([""] if stated_value == param.default else [])
        stated = [t.lower() for t in draft.stated.values()]
        if len(set(stated)) != len(stated):
            continue  # two arguments with the same words would make the request ambiguous
        draft.sentence = " ".join([template.format(**texts), *clauses])
        return draft
    raise RuntimeError(f"could not draw distinct argument values for {function.name} in {_MAX_RETRIES} tries")


def _call_task(
    rng: random.Random,
    category: Category,
    functions: list[Function],
    max_tools: int,
    max_calls: int,
    optional_rate: float,
    task_id: str,
) -> ToolTask:
    if category in ("single", "multiple"):
        target = rng.choice(functions)
        drafts = [draft_call(target, rng, optional_rate)]
        used = [target]
        tools = [target] + (
            _distractors(rng, functions, used, rng.randint(1, max_tools - 1)) if category == "multiple" else []
        )
    elif category == "parallel":
        target = rng.choice(functions)
        drafts = _distinct_drafts(rng, [target] * rng.randint(2, max_calls), optional_rate)
        used = tools = [target]
    else:  # parallel_multiple
        n_calls = rng.randint(2, max_calls)
        used = rng.sample(functions, rng.randint(2, min(n_calls, max_tools)))
        called = used + [rng.choice(used) for _ in range(n_calls - len(used))]
        rng.shuffle(called)
        drafts = _distinct_drafts(rng, called, optional_rate)
        room = max_tools - len(used)
        extra = rng.randint(0, 1) if room > 0 else 0
        tools = list(used) + _distractors(rng, functions, used, extra)
    tools = list(tools)
    rng.shuffle(tools)
    return ToolTask(
        id=task_id,
        messages=[{"role": "user", "content": _join([d.sentence for d in drafts], rng)}],
        tools=[f.tool() for f in tools],
        ground_truth=[GroundTruthCall(d.function.name, d.arguments) for d in drafts],
        category=category,
        domain=drafts[0].function.domain,
        source="synthetic",
        meta={"functions": [d.function.name for d in drafts]},
    )


def _irrelevance_task(
    rng: random.Random, functions: list[Function], max_tools: int, optional_rate: float, task_id: str
) -> ToolTask:
    asked = rng.choice(functions)
    others = [f for f in functions if f.domain != asked.domain]
    tools = rng.sample(others, min(len(others), rng.randint(1, max_tools)))
    return ToolTask(
        id=task_id,
        messages=[{"role": "user", "content": draft_call(asked, rng, optional_rate).sentence}],
        tools=[f.tool() for f in tools],
        ground_truth=[],
        category="irrelevance",
        domain=tools[0].domain,
        source="synthetic",
        meta={"asked_function": asked.name, "asked_domain": asked.domain},
    )


def _distractors(rng: random.Random, functions: list[Function], used: list[Function], k: int) -> list[Function]:
    """`k` other tools; half the time from the target's own domain (the harder choice)."""
    names = {f.name for f in used}
    pool = [f for f in functions if f.name not in names]
    same = [f for f in pool if f.domain == used[0].domain]
    picked: list[Function] = []
    for _ in range(k):
        source = same if same and rng.random() < 0.5 else pool
        if not source:
            break
        f = rng.choice(source)
        picked.append(f)
        pool.remove(f)
        if f in same:
            same.remove(f)
    return picked


def _distinct_drafts(rng: random.Random, functions: list[Function], optional_rate: float) -> list[CallDraft]:
    """One draft per entry; two calls of the same function never state the same values."""
    drafts: list[CallDraft] = []
    for function in functions:
        for _ in range(_MAX_RETRIES):
            draft = draft_call(function, rng, optional_rate)
            key = (function.name, tuple(sorted(v.lower() for v in draft.stated.values())))
            clash = any(
                (d.function.name, tuple(sorted(v.lower() for v in d.stated.values()))) == key
                or (d.function.name == function.name and _shares_required_value(d, draft))
                for d in drafts
            )
            if not clash:
                drafts.append(draft)
                break
        else:
            raise RuntimeError(f"could not draw distinct calls of {function.name} in {_MAX_RETRIES} tries")
    return drafts


def _shares_required_value(a: CallDraft, b: CallDraft) -> bool:
    """Two calls of one function that repeat a required value read as one call (e.g. two forecasts for one city)."""
    required = [p.name for p in a.function.params if not p.optional]
    return bool(required) and all(a.stated.get(name) == b.stated.get(name) for name in required)


def _join(sentences: list[str], rng: random.Random) -> str:
    """One request out of several call sentences, in one of a few styles."""
    if len(sentences) == 1:
        return sentences[0]
    style = rng.randrange(4)
    if style == 0:
        return " ".join(sentences)
    if style == 1:
        return " ".join([sentences[0]] + [f"{rng.choice(_CONNECTORS)} {_lower_first(s)}" for s in sentences[1:]])
    if style == 2:
        return f"I have {len(sentences)} requests. " + " ".join(f"{k}) {s}" for k, s in enumerate(sentences, start=1))
    return " ".join(f"{_ORDINALS[k]} {_lower_first(s)}" for k, s in enumerate(sentences))


def _lower_first(sentence: str) -> str:
    """Lower-case the first letter so a sentence can follow a connector ("I ..." keeps its capital)."""
    if sentence.startswith(("I ", "I'")) or not sentence[:1].isalpha():
        return sentence
    return sentence[0].lower() + sentence[1:]


__all__ = ["CALL_CATEGORIES", "DOMAINS", "draft_call", "generate_tasks"]
