"""Matching predicted calls against ground truth with accepted-value semantics.

A ground-truth argument lists every accepted value (BFCL's possible answers, `GroundTruthCall`);
`""` in the list means the argument may be omitted. Values are compared exactly, as ToolRL and
Tool-N1 do (`==` / `json.dumps` equality), with two relaxations: an int equals the float of the
same number, and a bool is never a number. BFCL's looser string normalisation (case, spaces,
punctuation) belongs to the strict AST term, which uses the toolcall checker.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from megatron_toolrl.data.task import GroundTruthCall, ToolCall

OPTIONAL = ""
"""Marker in an accepted-value list: the argument may be left out."""


def value_accepted(value: Any, accepted: Any) -> bool:
    """Whether `value` is one of the accepted values (a list; a bare value is a one-element list)."""
    options = accepted if isinstance(accepted, list) else [accepted]
    return any(_matches(value, option) for option in options)


def omission_accepted(accepted: Any) -> bool:
    """Whether leaving the argument out is correct."""
    return isinstance(accepted, list) and OPTIONAL in accepted


def _matches(value: Any, option: Any) -> bool:
    if isinstance(option, dict):
        # a nested possible answer: every key carries its own accepted-value list
        if not isinstance(value, dict):
            return False
        if any(k not in option for k in value):
            return False
        return all(
            value_accepted(value[k], acc) if k in value else omission_accepted(acc) for k, acc in option.items()
        )
    if isinstance(option, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(option):
            return False
        return all(_matches(v, o) for v, o in zip(value, option))
    if isinstance(option, bool) or isinstance(value, bool):
        return type(option) is type(value) and option == value
    if isinstance(option, (int, float)) and isinstance(value, (int, float)):
        return float(option) == float(value)
    return type(option) is type(value) and option == value


def call_accepted(gt: GroundTruthCall, call: ToolCall) -> bool:
    """Same name, every given argument accepted, every left-out argument optional."""
    if call.name != gt.name:
        return False
    if any(k not in gt.arguments for k in call.arguments):
        return False
    return all(
        value_accepted(call.arguments[k], acc) if k in call.arguments else omission_accepted(acc)
        for k, acc in gt.arguments.items()
    )


def calls_match_exactly(gt: Sequence[GroundTruthCall], calls: Sequence[ToolCall]) -> bool:
    """The calls equal the ground truth as a multiset: a one-to-one pairing of accepted calls exists.

    A greedy pairing can miss a valid one when two ground-truth calls of the same tool both accept
    the same predicted call, so this searches for a perfect bipartite matching (Kuhn's augmenting
    paths; sizes are bounded by ParseLimits.max_calls).
    """
    if len(gt) != len(calls):
        return False
    if Counter(g.name for g in gt) != Counter(c.name for c in calls):
        return False
    edges = [[j for j, c in enumerate(calls) if call_accepted(g, c)] for g in gt]
    owner: list[int | None] = [None] * len(calls)

    def augment(i: int, seen: list[bool]) -> bool:
        for j in edges[i]:
            if seen[j]:
                continue
            seen[j] = True
            if owner[j] is None or augment(owner[j], seen):  # type: ignore[arg-type]
                owner[j] = i
                return True
        return False

    return all(augment(i, [False] * len(calls)) for i in range(len(gt)))


def multiset_jaccard(a: Sequence[Any], b: Sequence[Any]) -> float:
    """|a ∩ b| / (|a| + |b| - |a ∩ b|) over multisets; 1 for two empty sequences (ToolRL's
    `match_score` returns 1 when both lists are equal, including both empty)."""
    if not a and not b:
        return 1.0
    ca, cb = Counter(a), Counter(b)
    inter = sum(min(ca[k], cb[k]) for k in ca.keys() & cb.keys())
    return inter / (len(a) + len(b) - inter)
