"""Nemotron-Tool-N1's binary reward (score 0 or 1).

Tool-N1 (`verl/utils/reward_score/toolcall.py`, `compute_score_v0`) gives 1 only when the answer
has `<think>` and `</think>`, its call block parses, and the calls equal the ground truth as a
multiset of (name, arguments), ignoring call and key order. We keep that rule with two changes,
both documented in docs/rewards.md:
- arguments are compared with accepted-value semantics (a value in the ground truth's accepted
  list; an optional argument may be left out), because our ground truth is BFCL's possible answers;
- an irrelevance task scores 1 for a well-formed answer without calls (Tool-N1's v0 gives 0 to any
  answer without a `<tool_call>` block, so only `<tool_call>[]</tool_call>` scores there).
"""

from __future__ import annotations

from typing import Sequence

from megatron_toolrl.data.task import GroundTruthCall
from megatron_toolrl.rewards.matching import calls_match_exactly
from megatron_toolrl.toolcall.types import ParseResult


def binary_score(parsed: ParseResult, gt: Sequence[GroundTruthCall], require_think: bool, well_formed: bool) -> float:
    """1.0 iff (think present when required) and the answer is well formed and its calls equal the ground truth.

    `well_formed`: the answer parses; for an irrelevance task, it declines to call
    (`format.declines_to_call`, which also accepts prose in the python format).

    "Think present" is the parser's `has_think` (a think block before the calls), like Tool-N1's
    check that both tags occur; the stricter "think first" rule belongs to the format term.
    """
    if require_think and not parsed.has_think:
        return 0.0
    if not well_formed:
        return 0.0
    return 1.0 if calls_match_exactly(gt, parsed.calls) else 0.0
