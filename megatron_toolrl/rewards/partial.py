"""ToolRL's fine-grained correctness score, normalised to [0, 1].

Following ToolRL's `compute_tool_call_reward` (`verl/utils/reward_score/rlla.py`, Qian et al. 2025):

    S     = J(gt tool names, predicted tool names)                      multiset Jaccard
          + sum over gt calls g, of the best still-unused predicted call p with g's name:
              J(param names of g, param names of p) + #{params of g whose value p gets right}
    S_max = 1 + sum over gt calls g of (1 + |params of g|)
    score = S / S_max, or 1 on an exact match, or 0 when the answer is malformed.

The reward term maps the score onto [low, high] (ToolRL: [-3, 3]). Differences from ToolRL, all on
purpose (docs/rewards.md):
- values are judged with accepted-value semantics: right means "one of the accepted values", and
  an optional argument (accepted list holds "") left out counts as present and right, so that an
  answer BFCL accepts always reaches S = S_max;
- the exact-match shortcut is a multiset match (order of calls and keys does not matter);
- irrelevance tasks (no ground-truth call), where ToolRL gives 0 whatever the answer: score 1 when
  the answer is well formed and calls nothing, 0 when it calls anything or is malformed.
"""

from __future__ import annotations

from typing import Sequence

from megatron_toolrl.data.task import GroundTruthCall, ToolCall
from megatron_toolrl.rewards.matching import (
    calls_match_exactly,
    multiset_jaccard,
    omission_accepted,
    value_accepted,
)


def pair_score(gt: GroundTruthCall, call: ToolCall) -> float:
    """Parameter-name Jaccard plus the number of ground-truth parameters given an accepted value.

    An optional ground-truth parameter that the call leaves out counts as named and right.
    """
    left_out_ok = [k for k, acc in gt.arguments.items() if k not in call.arguments and omission_accepted(acc)]
    predicted_names = list(call.arguments) + left_out_ok
    names = multiset_jaccard(list(gt.arguments), predicted_names)
    right = len(left_out_ok) + sum(
        1 for k, acc in gt.arguments.items() if k in call.arguments and value_accepted(call.arguments[k], acc)
    )
    return names + right


def partial_score(gt: Sequence[GroundTruthCall], calls: Sequence[ToolCall], well_formed: bool) -> float:
    """ToolRL's S / S_max in [0, 1] for one answer (see the module docstring).

    `well_formed`: the answer parses; for an irrelevance task (empty `gt`), it declines to call
    (`format.declines_to_call`).
    """
    if not gt:
        return 1.0 if (well_formed and not calls) else 0.0
    if not well_formed:
        return 0.0
    if calls_match_exactly(gt, calls):
        return 1.0
    score = multiset_jaccard([g.name for g in gt], [c.name for c in calls])
    s_max = 1.0
    used: set[int] = set()
    for g in gt:
        s_max += 1.0 + len(g.arguments)
        best, best_index = 0.0, -1
        for i, call in enumerate(calls):
            if i in used or call.name != g.name:
                continue
            s = pair_score(g, call)
            if s > best:  # strict: the first of equally good calls wins, as in ToolRL
                best, best_index = s, i
        if best_index >= 0:
            used.add(best_index)
            score += best
    return score / s_max
