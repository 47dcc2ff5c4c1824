"""The check after every weight push: engine log-probabilities of a fixed probe vs the trainer's."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from megatron_toolrl.errors import ToolRLError
from megatron_toolrl.rollout.types import LogprobAgreement, ProbeBatch

log = logging.getLogger(__name__)


class SyncMismatchError(ToolRLError):
    """An engine's probe log-probabilities disagree with the reference after a weight push."""

    def __init__(self, agreement: LogprobAgreement, tolerance_mean: float, tolerance_max: float | None):
        self.agreement = agreement
        limit = f"mean <= {tolerance_mean:g}" + (f", max <= {tolerance_max:g}" if tolerance_max is not None else "")
        super().__init__(
            f"weight sync check failed on {agreement.engine}: |engine - reference| logprob mean "
            f"{agreement.mean_abs_diff:.3g}, max {agreement.max_abs_diff:.3g} over {agreement.num_tokens} tokens "
            f"(allowed {limit}). The engine does not hold the pushed weights (missing or misnamed tensors, "
            f"stale tied lm_head or prefix cache, or a dtype mismatch beyond tolerance)."
        )


def compare_logprobs(engine: str, engine_logprobs: Sequence[Sequence[float]], reference: Sequence[Sequence[float]]) -> LogprobAgreement:
    """Max and mean |engine - reference| over every probe token."""
    if len(engine_logprobs) != len(reference):
        raise ValueError(f"{engine}: {len(engine_logprobs)} probe rows from the engine, {len(reference)} in the reference")
    total, count, worst = 0.0, 0, 0.0
    for i, (got, want) in enumerate(zip(engine_logprobs, reference)):
        if len(got) != len(want):
            raise ValueError(f"{engine}: probe row {i} has {len(got)} engine logprobs and {len(want)} reference ones")
        for a, b in zip(got, want):
            diff = abs(float(a) - float(b))
            if math.isnan(diff):
                diff = math.inf
            total += diff
            worst = max(worst, diff)
            count += 1
    return LogprobAgreement(max_abs_diff=worst, mean_abs_diff=total / max(count, 1), num_tokens=count, engine=engine)


def check_probe(
    engine: str, engine_logprobs: Sequence[Sequence[float]], probe: ProbeBatch, tolerance: tuple[float, float | None]
) -> LogprobAgreement:
    """Compare, log, and raise `SyncMismatchError` when beyond (mean, max) tolerance."""
    agreement = compare_logprobs(engine, engine_logprobs, probe.reference_logprobs)
    log.info(
        "weight sync probe on %s: mean |dlogp| %.3g, max %.3g over %d tokens",
        engine, agreement.mean_abs_diff, agreement.max_abs_diff, agreement.num_tokens,
    )
    tol_mean, tol_max = tolerance
    if agreement.mean_abs_diff > tol_mean or (tol_max is not None and agreement.max_abs_diff > tol_max):
        raise SyncMismatchError(agreement, tol_mean, tol_max)
    return agreement
